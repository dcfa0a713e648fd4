"""Contender "ours" for the report: one transformation's job report, as data and rendered.

    python -m benchmarks.report_run --sim-db PATH --work DIR --transformation 1

Both contenders start from the same job attributes in memory (what one batched read of DIRAC
returns), so the read itself is not timed. Three paths are timed for ours:

- data: ``aggregate_jobs`` over the jobs, then ``build_report`` (what a cycle does);
- stored: ``build_report`` from the aggregate rows a cycle stored (what the dashboard page does);
- text / html: the report rendered, from the stored rows. The HTML uses a stand-in template of
  the mail's table (below) until the dashboard's report template settles; it renders
  ``Report.table_rows()`` like the page does.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks import djangoenv
from benchmarks.measure import emit, peak_rss_mb

STAND_IN_TEMPLATE = """<table class="report">
<caption>Transformation: {{ report.transformation }}</caption>
<thead><tr><th>Status</th><th>MinorStatus</th><th>ApplicationStatus</th><th>Site</th><th>Total</th></tr></thead>
<tbody>{% for row in rows %}
<tr class="{{ row.kind }} {{ row.style }}"><td>{{ row.status }}</td><td>{{ row.minor_status }}</td>\
<td>{{ row.application_status }}</td><td>{{ row.site }}</td><td>{{ row.total }}</td></tr>{% endfor %}
</tbody></table>
"""


def best(fn, repeat: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report_run")
    p.add_argument("--sim-db", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--transformation", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    djangoenv.setup(args.sim_db.resolve(), (args.work / "dashboard.sqlite3").resolve(), var_dir=args.work.resolve())

    from django.template import engines

    from failover.simulated.backend import SimulatedDirac
    from reports.aggregation import aggregate_jobs, build_report, render_text

    backend = SimulatedDirac()
    tasks = backend.tasks([args.transformation])
    jobs = list(backend.jobs([t.job for t in tasks if t.job]).values())
    template = engines["django"].from_string(STAND_IN_TEMPLATE)
    tid = args.transformation

    data_s, report = best(lambda: build_report(tid, aggregate_jobs(jobs)), args.repeat)
    rows = aggregate_jobs(jobs)
    stored_s, report = best(lambda: build_report(tid, rows), args.repeat)
    text_s, text = best(lambda: render_text(build_report(tid, rows)), args.repeat)

    def html():
        r = build_report(tid, rows)
        return template.render({"report": r, "rows": r.table_rows()})

    html_s, page = best(html, args.repeat)
    emit(
        {
            "contender": "ours",
            "jobs": len(jobs),
            "aggregate_rows": len(rows),
            "seconds": {"data": data_s, "stored": stored_s, "text": text_s, "html": html_s,
                        "html_from_jobs": data_s + html_s, "text_from_jobs": data_s + text_s},
            "sizes": {"text": len(text), "html": len(page)},
            "peak_rss_mb": peak_rss_mb(),
        }
    )


if __name__ == "__main__":
    main()
