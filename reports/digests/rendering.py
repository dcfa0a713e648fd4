"""A digest as a message: three templates (subject, text, HTML).

Mail clients drop <style> blocks and scripts, so the HTML part is tables with inline styles; the
styles live here, next to the colours the dashboard's report uses (green Done, red Failed/Killed,
amber otherwise, bold subtotal rows), so the template stays readable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string

from reports.colours import TONES
from reports.digests.building import Digest

FONT = "-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif"
MONO = "SFMono-Regular,Menlo,Consolas,'Liberation Mono',monospace"

_CELL = "padding:5px 8px;border:1px solid #e1e6eb;font-size:12px;line-height:1.35;vertical-align:top;"
_NUM = "text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums;"
# style: (text colour, subtotal background, total background): the report's, reports/colours.py.
_TONES = TONES
_SWATCH = "display:inline-block;width:9px;height:9px;border-radius:2px;margin-right:5px;background:{};"


@dataclass(frozen=True)
class Cell:
    text: str
    style: str
    # The colour of a swatch before the text (a status or minor status, as the charts draw it).
    swatch: str = ""


def report_html_rows(rows: list[dict]) -> list[list[Cell]]:
    """The report's rows (Report.table_rows) as cells with inline styles."""
    out = []
    for row in rows:
        kind, style = row["kind"], row["style"]
        ink, soft, strong = _TONES.get(style, ("#1f2328", "#f6f8fa", "#e6ebf1"))
        if kind == "data":
            base, first = f"{_CELL}color:#1f2328;", f"{_CELL}color:{ink};font-weight:600;"
        elif kind == "minor":
            base = first = f"{_CELL}background:{soft};font-weight:700;color:{ink};"
        elif kind == "status":
            base = first = f"{_CELL}background:{strong};font-weight:700;color:{ink};"
        else:  # the grand total
            base = first = f"{_CELL}background:#e6ebf1;font-weight:700;color:#1f2328;border-top:2px solid #b8c2cc;"
        colour, minor = row.get("colour", ""), row.get("minor_colour", "")
        out.append([
            Cell(row["status"], first + "white-space:nowrap;", _SWATCH.format(colour) if colour else ""),
            Cell(row["minor_status"], base, _SWATCH.format(minor) if kind == "minor" and style == "failed" else ""),
            Cell(row["application_status"], base),
            Cell(row["site"], base + "white-space:nowrap;"),
            Cell(row["total"], base + _NUM),
        ])
    return out


STYLES = {
    "font": FONT,
    "mono": MONO,
    "th": f"{_CELL}background:#eef2f6;color:#1f2328;font-weight:700;text-align:left;white-space:nowrap;",
    "th_num": f"{_CELL}background:#eef2f6;color:#1f2328;font-weight:700;text-align:right;white-space:nowrap;",
    "td": f"{_CELL}color:#1f2328;",
    "td_num": f"{_CELL}color:#1f2328;{_NUM}",
    "td_mono": f"{_CELL}color:#1f2328;font-family:{MONO};font-size:11px;word-break:break-all;",
    "tone": {"good": "#2e8540", "bad": "#c0392b", "warn": "#9a6700", "": "#1f2328"},
    "state": {"done": "#2e8540", "failed": "#c0392b", "interrupted": "#9a6700", "pending": "#656d76",
              "proposed": "#1f6fb2"},
    "status": {"Active": ("#1f6fb2", "#e8f1fa"), "Flush": ("#1f6fb2", "#e8f1fa"),
               "Completed": ("#2e8540", "#e6f4ea"), "Archived": ("#2e8540", "#e6f4ea"),
               "Stopped": ("#9a6700", "#fff4d6")},
}


def _status_style(status: str) -> str:
    ink, bg = STYLES["status"].get(status, ("#6e7781", "#eef1f4"))
    return (f"display:inline-block;padding:1px 8px;border-radius:10px;background:{bg};color:{ink};"
            "font-size:12px;font-weight:600;")


def context(digest: Digest) -> dict:
    sections = []
    for s in digest.sections:
        sections.append({
            "s": s,
            "rows": report_html_rows(s.report_rows),
            "status_style": _status_style(s.status),
            "share_style": f"color:{'#c0392b' if s.jobs_failed else '#2e8540'};font-weight:600;",
        })
    return {
        "digest": digest,
        "sections": sections,
        "st": STYLES,
        "time_zone": settings.TIME_ZONE,
    }


def render(digest: Digest) -> tuple[str, str, str]:
    """(subject, text body, HTML body)."""
    ctx = context(digest)
    subject = re.sub(r"\s+", " ", render_to_string("digests/subject.txt", ctx)).strip()[:250]
    text = render_to_string("digests/body.txt", ctx)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    html = render_to_string("digests/body.html", ctx)
    return subject, text, html
