"""The scenario format of docs/scenario.md: parse, validate, and normalise.

Pure Python (no Django): the simulator loads it into its tables, and the real-DIRAC test loader
uses the same validated form to fill real services.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from failover.errors import ScenarioError


@dataclass
class Scenario:
    productions: list[dict[str, Any]] = field(default_factory=list)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    # Recovery (optional): the File Catalog and the Request Management System. None: the scenario
    # did not describe it (an unknown catalogue; no requests), and dump leaves the key out.
    catalog: list[dict[str, Any]] | None = None
    requests: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {
            "productions": self.productions,
            "transformations": self.transformations,
            "files": self.files,
            "tasks": self.tasks,
            "jobs": self.jobs,
        }
        if self.catalog is not None:
            out["catalog"] = self.catalog
        if self.requests is not None:
            out["requests"] = self.requests
        return out


EMPTY_HINT = "to empty the simulated DIRAC on purpose, use simdirac load --empty"


def read_text(text: str, origin: str = "scenario", *, allow_empty: bool = False) -> Scenario:
    """Parse JSON or YAML text and validate it.

    JSON is tried first: PyYAML reads YAML 1.1, which is not quite a superset of JSON (it
    rejects tab indentation and reads ``1e4`` as a string).

    An empty document, or one that describes nothing at all, is refused unless ``allow_empty``:
    loading it would replace the whole state with nothing (a truncated file, an empty pipe).
    Whatever the parsers or the validation trip over (nesting deep enough to exhaust the stack,
    numbers longer than Python converts) is a ``ScenarioError`` naming the origin, never a traceback.
    """
    try:
        scenario = _parse(text, origin)
    except RecursionError:
        raise ScenarioError(f"{origin}: nested too deeply to be a scenario") from None
    if not allow_empty and not any(scenario.as_dict().values()):
        what = (
            "empty" if not text.strip()
            else "describes an empty DIRAC (no productions, transformations, files, tasks or jobs)"
        )
        raise ScenarioError(f"{origin}: {what}; nothing loaded ({EMPTY_HINT})")
    return scenario


def _parse(text: str, origin: str) -> Scenario:
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        pass
    else:
        return validate(data)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(f"{origin}: not valid JSON or YAML{where}") from None
    except ValueError as exc:  # e.g. an integer longer than Python's int conversion limit
        raise ScenarioError(f"{origin}: not a valid scenario ({str(exc)[:120]})") from None
    return validate(data)


def read_bytes(data: bytes, origin: str = "scenario", *, allow_empty: bool = False) -> Scenario:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"{origin}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "a scenario is JSON or YAML in UTF-8"
        ) from None
    return read_text(text, origin, allow_empty=allow_empty)


def read_path(path: str | Path, *, allow_empty: bool = False) -> Scenario:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror}") from None
    return read_bytes(data, str(path), allow_empty=allow_empty)


def to_json(scenario: Scenario) -> str:
    return json.dumps(scenario.as_dict(), indent=1, sort_keys=False)


# -- validation ---------------------------------------------------------------------------------


def _fail(place: str, message: str):
    raise ScenarioError(f"{place}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# The simulator's integer columns are 32-bit on PostgreSQL and MySQL, 64-bit on SQLite: a larger
# number would fail in the database, after validation, with a traceback.
MAX_INT = 2**31 - 1


def _positive_id(item: Mapping, key: str, place: str) -> int:
    value = item.get(key)
    if not _is_int(value) or value <= 0:
        _fail(f"{place}.{key}", f"must be a positive integer, not {value!r}")
    if value > MAX_INT:
        _fail(f"{place}.{key}", f"must be at most {MAX_INT}, not {value!r}")
    return value


# DIRAC's column sizes (Type char(32), Status char(32), MinorStatus varchar(128), ...).
MAX_LENGTH = {"type": 32, "status": 32, "name": 255, "minor_status": 128, "application_status": 255,
              "site": 64, "lfn": 512}


def _fits(value: str, key: str, place: str) -> str:
    limit = MAX_LENGTH.get(key)
    if limit and len(value) > limit:
        _fail(f"{place}.{key}", f"is {len(value)} characters long; DIRAC keeps at most {limit}")
    return value


def _status(item: Mapping, key: str, place: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if not isinstance(value, str) or not value.strip():
        _fail(f"{place}.{key}", f"must be a non-empty string, not {value!r}")
    return _fits(value, key, place)


def _text(item: Mapping, key: str, place: str, default: str) -> str:
    value = item.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        _fail(f"{place}.{key}", f"must be a string, not {value!r}")
    return _fits(value, key, place)


LAST_UPDATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def _last_update(item: Mapping, place: str, out: dict) -> None:
    """The optional ``last_update`` (DIRAC's LastUpdateTime), kept as "YYYY-MM-DD HH:MM:SS" UTC.

    A time without an offset is UTC, as DIRAC stores it; fractions of a second are dropped
    (DIRAC's DATETIME columns keep whole seconds). Absent: the loader uses the load time.
    """
    if item.get("last_update") is None:
        return
    value = item["last_update"]
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            _fail(f"{place}.last_update", f"must be a UTC time like 2026-12-01 12:00:00, not {value!r}")
    else:
        if isinstance(value, date):  # YAML reads 2026-12-01 as a date
            _fail(f"{place}.last_update", f"must be a date and time, not the date {value.isoformat()}")
        _fail(f"{place}.last_update", f"must be a UTC time like 2026-12-01 12:00:00, not {value!r}")
    if when.tzinfo is not None:
        try:
            when = when.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            _fail(f"{place}.last_update", f"is out of range: {value!r}")
    if not 1000 <= when.year <= 9999:  # DIRAC's DATETIME columns (MySQL's range)
        _fail(f"{place}.last_update", f"must be between the years 1000 and 9999, not {value!r}")
    out["last_update"] = when.strftime(LAST_UPDATE_FORMAT)


def _list(data: Mapping, key: str) -> list:
    value = data.get(key) or []
    if not isinstance(value, list):
        _fail(key, "must be a list")
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            _fail(f"{key}[{i}]", "must be a mapping")
    return value


def validate(data: Any) -> Scenario:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        _fail("scenario", "must be a mapping with productions, transformations, files, tasks, jobs")
    known = {"productions", "transformations", "files", "tasks", "jobs", "catalog", "requests"}
    for key in data:
        if key not in known:
            _fail(str(key), f"unknown section (expected {', '.join(sorted(known))})")

    productions: dict[int, dict] = {}
    for i, item in enumerate(_list(data, "productions")):
        place = f"productions[{i}]"
        pid = _positive_id(item, "id", place)
        if pid in productions:
            _fail(f"{place}.id", f"production {pid} appears twice")
        productions[pid] = {
            "id": pid,
            "name": _text(item, "name", place, f"Production{pid}"),
            "status": _status(item, "status", place, "Active"),
        }

    transformations: dict[int, dict] = {}
    for i, item in enumerate(_list(data, "transformations")):
        place = f"transformations[{i}]"
        tid = _positive_id(item, "id", place)
        if tid in transformations:
            _fail(f"{place}.id", f"transformation {tid} appears twice")
        group_size = item.get("group_size", 1)
        if (
            not isinstance(group_size, int | float)
            or isinstance(group_size, bool)
            or not math.isfinite(group_size)
            or group_size <= 0
        ):
            _fail(f"{place}.group_size", f"must be a positive number, not {group_size!r}")
        production = item.get("production")
        if production is not None and (not _is_int(production) or production not in productions):
            _fail(f"{place}.production", f"production {production!r} does not exist")
        parent = item.get("parent")
        if parent is not None and (not _is_int(parent) or (parent != -1 and parent <= 0)):
            _fail(f"{place}.parent", f"must be -1, a transformation id or null, not {parent!r}")
        transformations[tid] = {
            "id": tid,
            "name": _text(item, "name", place, f"Transformation{tid}"),
            "type": _status(item, "type", place),
            "status": _status(item, "status", place),
            "group_size": float(group_size) if isinstance(group_size, float) else group_size,
            "production": production,
            "parent": parent,
        }
    for i, t in enumerate(transformations.values()):
        if t["parent"] not in (None, -1) and t["parent"] not in transformations:
            _fail(f"transformations[{i}].parent", f"transformation {t['parent']} does not exist")
    _check_no_cycle(transformations)

    jobs: dict[int, dict] = {}
    for i, item in enumerate(_list(data, "jobs")):
        place = f"jobs[{i}]"
        jid = _positive_id(item, "id", place)
        if jid in jobs:
            _fail(f"{place}.id", f"job {jid} appears twice")
        jobs[jid] = {
            "id": jid,
            "status": _status(item, "status", place),
            "minor_status": _text(item, "minor_status", place, "Unknown"),
            "application_status": _text(item, "application_status", place, "Unknown"),
            "site": _text(item, "site", place, "ANY"),
        }
        _last_update(item, place, jobs[jid])
        for key in ("input_data", "output_data"):
            if item.get(key) is not None:
                jobs[jid][key] = _lfn_list(item[key], f"{place}.{key}")

    tasks: dict[tuple[int, int], dict] = {}
    job_owner: dict[int, str] = {}
    for i, item in enumerate(_list(data, "tasks")):
        place = f"tasks[{i}]"
        tid = _positive_id(item, "transformation", place)
        if tid not in transformations:
            _fail(f"{place}.transformation", f"transformation {tid} does not exist")
        task = _positive_id(item, "task", place)
        if (tid, task) in tasks:
            _fail(f"{place}.task", f"task {task} of transformation {tid} appears twice")
        job = item.get("job", 0)
        if not _is_int(job) or job < 0:
            _fail(f"{place}.job", f"must be 0 or a job id, not {job!r}")
        if job:
            if job not in jobs:
                _fail(f"{place}.job", f"job {job} does not exist")
            if job in job_owner:
                _fail(f"{place}.job", f"job {job} already belongs to {job_owner[job]}")
            job_owner[job] = f"task {task} of transformation {tid}"
        tasks[(tid, task)] = {
            "transformation": tid,
            "task": task,
            "job": job,
            "status": _status(item, "status", place, "Created"),
        }
        _last_update(item, place, tasks[(tid, task)])

    files: dict[tuple[int, str], dict] = {}
    for i, item in enumerate(_list(data, "files")):
        place = f"files[{i}]"
        tid = _positive_id(item, "transformation", place)
        if tid not in transformations:
            _fail(f"{place}.transformation", f"transformation {tid} does not exist")
        lfn = item.get("lfn")
        if not isinstance(lfn, str) or not lfn.strip():
            _fail(f"{place}.lfn", f"must be a non-empty string, not {lfn!r}")
        _fits(lfn, "lfn", place)
        if (tid, lfn) in files:
            _fail(f"{place}.lfn", f"{lfn} appears twice in transformation {tid}")
        task = item.get("task")
        if task is not None:
            if not _is_int(task) or (tid, task) not in tasks:
                _fail(f"{place}.task", f"task {task} of transformation {tid} does not exist")
        error_count = item.get("error_count", 0)
        if not _is_int(error_count) or error_count < 0:
            _fail(f"{place}.error_count", f"must be a non-negative integer, not {error_count!r}")
        if error_count > MAX_INT:
            _fail(f"{place}.error_count", f"must be at most {MAX_INT}, not {error_count!r}")
        files[(tid, lfn)] = {
            "transformation": tid,
            "lfn": lfn,
            "status": _status(item, "status", place, "Unused"),
            "task": task,
            "error_count": error_count,
        }

    return Scenario(
        productions=[productions[k] for k in sorted(productions)],
        transformations=[transformations[k] for k in sorted(transformations)],
        files=[files[k] for k in sorted(files)],
        tasks=[tasks[k] for k in sorted(tasks)],
        jobs=[jobs[k] for k in sorted(jobs)],
        catalog=_catalog(data),
        requests=_requests(data, jobs),
    )


def _lfn_list(value: Any, place: str) -> list[str]:
    if not isinstance(value, list):
        _fail(place, f"must be a list of LFNs, not {value!r:.80}")
    for i, lfn in enumerate(value):
        if not isinstance(lfn, str) or not lfn.strip():
            _fail(f"{place}[{i}]", f"must be a non-empty string, not {lfn!r:.80}")
        _fits(lfn, "lfn", f"{place}[{i}]")
    return list(value)


def _catalog(data: Mapping) -> list[dict] | None:
    """The ``catalog`` section; None when absent (or null): the catalogue is then unknown."""
    if data.get("catalog") is None:
        return None
    entries: dict[str, dict] = {}
    for i, item in enumerate(_list(data, "catalog")):
        place = f"catalog[{i}]"
        lfn = item.get("lfn")
        if not isinstance(lfn, str) or not lfn.strip():
            _fail(f"{place}.lfn", f"must be a non-empty string, not {lfn!r}")
        _fits(lfn, "lfn", place)
        if lfn in entries:
            _fail(f"{place}.lfn", f"{lfn} appears twice in the catalog")
        entry: dict[str, Any] = {"lfn": lfn}
        metadata = item.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                _fail(f"{place}.metadata", f"must be a mapping of names to values, not {metadata!r:.80}")
            for key, value in metadata.items():
                if not isinstance(key, str) or not key.strip():
                    _fail(f"{place}.metadata", f"names must be non-empty strings, not {key!r}")
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    _fail(f"{place}.metadata.{key}", f"must be a string or a number, not {value!r:.80}")
            entry["metadata"] = dict(metadata)
        if item.get("ancestors") is not None:
            entry["ancestors"] = _lfn_list(item["ancestors"], f"{place}.ancestors")
        unknown = set(item) - {"lfn", "metadata", "ancestors"}
        if unknown:
            _fail(f"{place}.{sorted(unknown)[0]}", "unknown field (expected lfn, metadata, ancestors)")
        entries[lfn] = entry
    return [entries[k] for k in sorted(entries)]


def _requests(data: Mapping, jobs: Mapping[int, dict]) -> list[dict] | None:
    if data.get("requests") is None:
        return None
    requests: dict[int, dict] = {}
    for i, item in enumerate(_list(data, "requests")):
        place = f"requests[{i}]"
        job = _positive_id(item, "job", place)
        if job not in jobs:
            _fail(f"{place}.job", f"job {job} does not exist")
        if job in requests:
            _fail(f"{place}.job", f"job {job} already has a request (at most one per job)")
        requests[job] = {"job": job, "status": _status(item, "status", place)}
    return [requests[k] for k in sorted(requests)]


def _check_no_cycle(transformations: dict[int, dict]) -> None:
    index = {tid: i for i, tid in enumerate(transformations)}
    for start in transformations:
        path = [start]
        current = transformations[start]["parent"]
        while current not in (None, -1):
            if current in path:
                # Name the place where the cycle starts, with the cycle itself.
                cycle = path[path.index(current):] + [current]
                _fail(
                    f"transformations[{index[current]}].parent",
                    "parent links form a cycle: " + " -> ".join(str(t) for t in cycle),
                )
            path.append(current)
            current = transformations[current]["parent"]
