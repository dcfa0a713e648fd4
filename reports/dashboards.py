"""OpenSearch Dashboards saved objects for the aggregates: export as ndjson, import through the API.

The visualisations use only DIRAC's WMSHistory fields (timestamp, Status, MinorStatus,
ApplicationStatus, Site, JobGroup, Jobs), so pointing the index pattern at an installation's
``wmshistory_index-*`` shows DIRAC's own documents the same way.

A snapshot is all documents with one timestamp (one cycle here, one StatesAccountingAgent run in
DIRAC), and a failed job stays failed from one snapshot to the next: summing Jobs over a time
bucket would count it once per snapshot. The time series and the failures therefore show the
mean per snapshot (the sum divided by the number of distinct timestamps, in Vega), and the report
table shows the latest snapshot in the time range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from failover.domain import FAILED_TASK_STATUSES
from failover.errors import FailoverError
from reports.opensearch_config import ACTIONS, MAPPINGS, ROWS

IMPORT_PATH = "/api/saved_objects/_import"
FAILED_STATUSES = sorted(FAILED_TASK_STATUSES)
VEGA_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
# Saved-object formats these objects are written in (what Dashboards 1.x and 2.x export).
MIGRATION = {"index-pattern": "7.6.0", "visualization": "7.10.0", "search": "7.9.3", "dashboard": "7.9.3"}
PANEL_VERSION = "7.10.2"
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


class DashboardsError(FailoverError):
    """OpenSearch Dashboards refused or did not answer the import."""


@dataclass(frozen=True)
class Ids:
    """Saved-object ids: fixed, so an import overwrites the previous one; prefixed like the indices."""

    index_pattern_wmshistory: str
    index_pattern_actions: str
    transformation_filter: str
    job_states: str
    failures: str
    report_table: str
    actions: str
    dashboard: str

    @classmethod
    def for_prefix(cls, prefix: str) -> Ids:
        return cls(*(prefix + "-" + name.replace("_", "-") for name in cls.__dataclass_fields__))


def _dump(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _search_source(with_index: bool = True, query: str = "") -> dict:
    source = {"query": {"query": query, "language": "kuery"}, "filter": []}
    if with_index:
        source["indexRefName"] = INDEX_REF
    return {"searchSourceJSON": _dump(source)}


def _field_specs(family: str) -> str:
    types = {"keyword": "string", "text": "string", "integer": "number", "long": "number", "date": "date"}
    fields = []
    for name, mapping in MAPPINGS[family].items():
        if mapping.get("type") not in types:
            continue  # not indexed (Details)
        aggregatable = mapping["type"] != "text"
        fields.append({
            "name": name, "type": types[mapping["type"]], "esTypes": [mapping["type"]], "count": 0,
            "scripted": False, "searchable": True, "aggregatable": aggregatable, "readFromDocValues": aggregatable,
        })
    return _dump(fields)


def _index_pattern(object_id: str, title: str, family: str) -> dict:
    return {
        "id": object_id,
        "type": "index-pattern",
        "attributes": {"title": title, "timeFieldName": "timestamp", "fields": _field_specs(family)},
        "references": [],
        "migrationVersion": {"index-pattern": MIGRATION["index-pattern"]},
    }


def _visualization(object_id: str, title: str, description: str, vis_state: dict, index_pattern: str | None) -> dict:
    references = []
    if index_pattern and vis_state["type"] != "input_control_vis":
        references.append({"name": INDEX_REF, "type": "index-pattern", "id": index_pattern})
    return {
        "id": object_id,
        "type": "visualization",
        "attributes": {
            "title": title,
            "description": description,
            "visState": _dump({"title": title, **vis_state}),
            "uiStateJSON": "{}",
            "version": 1,
            "kibanaSavedObjectMeta": _search_source(with_index=bool(references)),
        },
        "references": references,
        "migrationVersion": {"visualization": MIGRATION["visualization"]},
    }


def _vega(spec: dict) -> dict:
    return {"type": "vega", "aggs": [], "params": {"spec": json.dumps(spec, indent=2)}}


def job_states_spec(index: str) -> dict:
    return {
        "$schema": VEGA_SCHEMA,
        "title": "Jobs by status (mean per snapshot)",
        "data": {
            "url": {
                "index": index,
                "%context%": True,
                "%timefield%": "timestamp",
                "body": {
                    "size": 0,
                    "aggs": {
                        "t": {
                            "date_histogram": {
                                "field": "timestamp",
                                "interval": {"%autointerval%": True},
                                "extended_bounds": {"min": {"%timefilter%": "min"}, "max": {"%timefilter%": "max"}},
                                "min_doc_count": 0,
                            },
                            "aggs": {
                                "snapshots": {"cardinality": {"field": "timestamp"}},
                                "states": {
                                    "terms": {"field": "Status", "size": 30},
                                    "aggs": {"jobs": {"sum": {"field": "Jobs"}}},
                                },
                            },
                        }
                    },
                },
            },
            "format": {"property": "aggregations.t.buckets"},
        },
        "transform": [
            {"flatten": ["states.buckets"], "as": ["state"]},
            {"calculate": "datum.state.key", "as": "Status"},
            {"calculate": "round(10 * datum.state.jobs.value / max(datum.snapshots.value, 1)) / 10", "as": "Jobs"},
        ],
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "key", "type": "temporal", "title": None},
            "y": {"field": "Jobs", "type": "quantitative", "title": "jobs (mean per snapshot)"},
            "color": {"field": "Status", "type": "nominal"},
            "tooltip": [
                {"field": "key", "type": "temporal", "title": "from"},
                {"field": "Status", "type": "nominal"},
                {"field": "Jobs", "type": "quantitative"},
            ],
        },
    }


def failures_spec(index: str) -> dict:
    return {
        "$schema": VEGA_SCHEMA,
        "title": "Failed and killed jobs by site and minor status (mean per snapshot)",
        "data": {
            "url": {
                "index": index,
                "%context%": True,
                "%timefield%": "timestamp",
                "body": {
                    "size": 0,
                    "aggs": {
                        "snapshots": {"cardinality": {"field": "timestamp"}},
                        "failed": {
                            "filter": {"terms": {"Status": FAILED_STATUSES}},
                            "aggs": {
                                "cells": {
                                    "composite": {
                                        "size": 1000,
                                        "sources": [
                                            {"site": {"terms": {"field": "Site"}}},
                                            {"minor": {"terms": {"field": "MinorStatus"}}},
                                        ],
                                    },
                                    "aggs": {"jobs": {"sum": {"field": "Jobs"}}},
                                }
                            },
                        },
                    },
                },
            },
            "format": {"property": "aggregations"},
        },
        "transform": [
            {"flatten": ["failed.cells.buckets"], "as": ["cell"]},
            {"calculate": "datum.cell.key.site", "as": "Site"},
            {"calculate": "datum.cell.key.minor", "as": "MinorStatus"},
            {"calculate": "round(10 * datum.cell.jobs.value / max(datum.snapshots.value, 1)) / 10", "as": "Jobs"},
        ],
        "mark": "rect",
        "encoding": {
            "x": {"field": "Site", "type": "nominal"},
            "y": {"field": "MinorStatus", "type": "nominal", "title": "minor status"},
            "color": {"field": "Jobs", "type": "quantitative", "title": "jobs"},
            "tooltip": [
                {"field": "Site", "type": "nominal"},
                {"field": "MinorStatus", "type": "nominal"},
                {"field": "Jobs", "type": "quantitative"},
            ],
        },
    }


def _terms(agg_id: str, field: str, size: int, order: str = "asc") -> dict:
    return {
        "id": agg_id, "enabled": True, "type": "terms", "schema": "bucket",
        "params": {"field": field, "orderBy": "_key", "order": order, "size": size, "otherBucket": False,
                   "otherBucketLabel": "Other", "missingBucket": False, "missingBucketLabel": "Missing"},
    }


def report_table_state() -> dict:
    return {
        "type": "table",
        "aggs": [
            {"id": "1", "enabled": True, "type": "sum", "schema": "metric",
             "params": {"field": "Jobs", "customLabel": "Jobs"}},
            # The newest snapshot in the time range only: the report is a snapshot, not a sum over time.
            _terms("2", "timestamp", 1, order="desc"),
            _terms("3", "JobGroup", 200),
            _terms("4", "Status", 30),
            _terms("5", "MinorStatus", 100),
            _terms("6", "ApplicationStatus", 100),
            _terms("7", "Site", 200),
        ],
        "params": {"perPage": 50, "showPartialRows": False, "showMetricsAtAllLevels": False, "showTotal": True,
                   "totalFunc": "sum", "percentageCol": ""},
    }


def transformation_filter_state(control_ref: str) -> dict:
    return {
        "type": "input_control_vis",
        "aggs": [],
        "params": {
            "controls": [{
                "id": "1", "fieldName": "JobGroup", "label": "Transformation (JobGroup, zero-padded id)",
                "type": "list", "parent": "", "indexPatternRefName": control_ref,
                "options": {"type": "terms", "multiselect": True, "dynamicOptions": True, "size": 200,
                            "order": "desc"},
            }],
            "updateFiltersOnChange": True, "useTimeFilter": True, "pinFilters": False,
        },
    }


def saved_objects(prefix: str = "failover", index_pattern: str = "") -> list[dict]:
    """Every saved object, the dashboard last; ``index_pattern`` defaults to our alias."""
    ids = Ids.for_prefix(prefix)
    title = index_pattern or f"{prefix}-{ROWS}"
    actions_title = f"{prefix}-{ACTIONS}"
    control_ref = "control_0_index_pattern"
    objects = [
        _index_pattern(ids.index_pattern_wmshistory, title, ROWS),
        _index_pattern(ids.index_pattern_actions, actions_title, ACTIONS),
    ]
    control = _visualization(
        ids.transformation_filter, "Failover: transformation", "Filters the dashboard by transformation.",
        transformation_filter_state(control_ref), None,
    )
    control["references"] = [{"name": control_ref, "type": "index-pattern", "id": ids.index_pattern_wmshistory}]
    objects += [
        control,
        _visualization(ids.job_states, "Failover: job states over time",
                       "Jobs per status, mean per snapshot in each time bucket.", _vega(job_states_spec(title)), None),
        _visualization(ids.failures, "Failover: failures by site and minor status",
                       "Failed and Killed jobs per site and minor status, mean per snapshot.",
                       _vega(failures_spec(title)), None),
        _visualization(ids.report_table, "Failover: report table",
                       "Jobs by Status, MinorStatus, ApplicationStatus and Site in the newest snapshot of the range.",
                       report_table_state(), ids.index_pattern_wmshistory),
        {
            "id": ids.actions,
            "type": "search",
            "attributes": {
                "title": "Failover: actions",
                "description": "Actions taken on DIRAC, newest first.",
                "columns": ["TransformationID", "Kind", "State", "Actor", "Outcome", "Error"],
                "sort": [["timestamp", "desc"]],
                "hits": 0,
                "version": 1,
                "kibanaSavedObjectMeta": _search_source(),
            },
            "references": [{"name": INDEX_REF, "type": "index-pattern", "id": ids.index_pattern_actions}],
            "migrationVersion": {"search": MIGRATION["search"]},
        },
    ]
    layout = [  # (object, type, x, y, w, h) on Dashboards' 48-column grid
        (ids.transformation_filter, "visualization", 0, 0, 48, 6),
        (ids.job_states, "visualization", 0, 6, 24, 16),
        (ids.failures, "visualization", 24, 6, 24, 16),
        (ids.report_table, "visualization", 0, 22, 48, 20),
        (ids.actions, "search", 0, 42, 48, 16),
    ]
    panels, references = [], []
    for n, (object_id, object_type, x, y, w, h) in enumerate(layout):
        panels.append({
            "version": PANEL_VERSION, "panelIndex": str(n + 1), "panelRefName": f"panel_{n}",
            "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(n + 1)}, "embeddableConfig": {},
        })
        references.append({"name": f"panel_{n}", "type": object_type, "id": object_id})
    objects.append({
        "id": ids.dashboard,
        "type": "dashboard",
        "attributes": {
            "title": "Failover: transformations",
            "description": "Job states, failures, the report and the actions, filtered by transformation.",
            "hits": 0,
            "panelsJSON": _dump(panels),
            "optionsJSON": _dump({"hidePanelTitles": False, "useMargins": True}),
            "version": 1,
            "timeRestore": True,
            "timeFrom": "now-7d",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 300000},
            "kibanaSavedObjectMeta": _search_source(with_index=False),
        },
        "references": references,
        "migrationVersion": {"dashboard": MIGRATION["dashboard"]},
    })
    return objects


def to_ndjson(objects: list[dict]) -> str:
    return "".join(json.dumps(o, sort_keys=True) + "\n" for o in objects)


def import_objects(
    url: str, ndjson: str, *, user: str = "", password: str = "", ca_certs: str = "", timeout: float = 30.0
) -> dict:
    """POST the objects to Dashboards' saved-objects import API (overwriting); returns its answer."""
    import requests

    endpoint = url.rstrip("/") + IMPORT_PATH
    try:
        response = requests.post(
            endpoint,
            params={"overwrite": "true"},
            headers={"osd-xsrf": "true"},
            files={"file": ("failover-dashboards.ndjson", ndjson.encode(), "application/ndjson")},
            auth=(user, password) if user else None,
            verify=ca_certs or True,
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise DashboardsError(f"cannot reach OpenSearch Dashboards at {url}: {exc.__class__.__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 200:
        why = answer.get("message") or response.text[:300]
        raise DashboardsError(f"OpenSearch Dashboards at {url} answered HTTP {response.status_code}: {why}")
    if not answer.get("success", False):
        problems = "; ".join(
            "{} {}: {}".format(e.get("type"), e.get("id"), (e.get("error") or {}).get("type", "error"))
            for e in answer.get("errors", [])
        )
        raise DashboardsError(f"OpenSearch Dashboards refused part of the import: {problems or answer}")
    return answer
