"""Error signatures by site, from the aggregates a cycle stored (no DIRAC call, no raw jobs).

``signature_matrix`` turns a transformation's stored aggregate rows (or a production's, summed over
its steps) into a signature x site table of its failed and killed jobs: each cell's count, its
share of the failed jobs, and the raw (Status, MinorStatus, ApplicationStatus, Site) with the most
jobs in it, which the web turns into a link to the jobs drill-down. ``production_site_hints`` runs
the engine's site test (``failover.insight.failing_sites``) on a production's steps together.
The signature is ``failover.signatures.signature``: the one normaliser.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from failover import insight
from failover.domain import FAILED_TASK_STATUSES, FINAL_TASK_STATUSES
from failover.signatures import signature
from reports.aggregation import AggregateRow


@dataclass
class Cell:
    count: int = 0
    share: float = 0.0  # of all failed jobs in the matrix, in %
    # The raw combination with the most jobs in this cell (for the drill-down's filters) and the
    # transformation it belongs to, and how many raw combinations the cell groups.
    filters: dict = field(default_factory=dict)
    transformation_id: int | None = None
    variants: int = 0


@dataclass
class SignatureRow:
    signature: str
    count: int
    share: float
    cells: list[Cell | None]


@dataclass
class Matrix:
    sites: list[str]
    # Per site: failed jobs, finished jobs, failure share (%).
    site_failed: list[int]
    site_total: list[int]
    site_share: list[float]
    rows: list[SignatureRow]
    failed: int

    def as_json(self) -> dict:
        return {
            "failed": self.failed,
            "sites": [{"site": s, "failed": f, "finished": t, "failed_share": sh}
                      for s, f, t, sh in zip(self.sites, self.site_failed, self.site_total, self.site_share,
                                             strict=True)],
            "signatures": [
                {"signature": r.signature, "count": r.count, "share": r.share,
                 "sites": {site: {"count": c.count, "share": c.share, "filters": c.filters,
                                  "transformation": c.transformation_id, "variants": c.variants}
                           for site, c in zip(self.sites, r.cells, strict=True) if c}}
                for r in self.rows
            ],
        }


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def signature_matrix(rows_by_t: dict[int, Sequence[AggregateRow]], limit: int | None = None) -> Matrix:
    """The failed (and killed) jobs of one or more transformations by signature and site.

    Signatures by count (the most first), then sites by failed count; ``limit`` keeps the top
    signatures only (the rest is left off, the totals still count it).
    """
    counts: dict[tuple[str, str], int] = defaultdict(int)
    raw: dict[tuple[str, str], Counter] = defaultdict(Counter)
    site_failed: Counter = Counter()
    site_total: Counter = Counter()
    for tid, rows in rows_by_t.items():
        for r in rows:
            if r.status in FINAL_TASK_STATUSES:
                site_total[r.site] += r.count
            if r.status not in FAILED_TASK_STATUSES:
                continue
            key = (signature(r.minor_status, r.application_status), r.site)
            counts[key] += r.count
            raw[key][(tid, r.status, r.minor_status, r.application_status, r.site)] += r.count
            site_failed[r.site] += r.count
    failed = sum(counts.values())
    sites = sorted(site_failed, key=lambda s: (-site_failed[s], s))
    by_sig: Counter = Counter()
    for (sig, _), n in counts.items():
        by_sig[sig] += n
    sigs = sorted(by_sig, key=lambda s: (-by_sig[s], s))
    if limit is not None:
        sigs = sigs[:limit]
    out_rows = []
    for sig in sigs:
        cells: list[Cell | None] = []
        for site in sites:
            n = counts.get((sig, site), 0)
            if not n:
                cells.append(None)
                continue
            (tid, status, minor, app, s), _ = max(raw[(sig, site)].items(), key=lambda kv: (kv[1], kv[0]))
            cells.append(Cell(n, _pct(n, failed), {"status": status, "minor_status": minor,
                                                   "application_status": app, "site": s}, tid,
                              len(raw[(sig, site)])))
        out_rows.append(SignatureRow(sig, by_sig[sig], _pct(by_sig[sig], failed), cells))
    return Matrix(sites, [site_failed[s] for s in sites], [site_total[s] for s in sites],
                  [_pct(site_failed[s], site_total[s]) for s in sites], out_rows, failed)


def top_signatures(rows: Iterable[AggregateRow], limit: int = 5) -> list[tuple[str, int, list[str]]]:
    """The most frequent failure signatures: (signature, failed jobs, sites by count)."""
    by_sig: Counter = Counter()
    sites: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        if r.status in FAILED_TASK_STATUSES:
            sig = signature(r.minor_status, r.application_status)
            by_sig[sig] += r.count
            sites[sig][r.site] += r.count
    top = sorted(by_sig.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [(sig, n, [s for s, _ in sorted(sites[sig].items(), key=lambda kv: (-kv[1], kv[0]))]) for sig, n in top]


@dataclass(frozen=True)
class ProductionSiteHint:
    site: str
    failed: int
    total: int
    rest_failed: int
    rest_total: int
    p_value: float
    signature: str
    # The steps where the site fails, with their failed jobs there.
    steps: tuple[tuple[int, int], ...]

    @property
    def share(self) -> float:
        return _pct(self.failed, self.total)

    @property
    def rest_share(self) -> float:
        return _pct(self.rest_failed, self.rest_total)

    def as_json(self) -> dict:
        return {"site": self.site, "failed": self.failed, "total": self.total, "rest_failed": self.rest_failed,
                "rest_total": self.rest_total, "p_value": float(f"{self.p_value:.3g}"), "signature": self.signature,
                "steps": [{"transformation": t, "failed": n} for t, n in self.steps]}


def production_site_hints(rows_by_t: dict[int, Sequence[AggregateRow]],
                          cfg: insight.InsightSettings) -> list[ProductionSiteHint]:
    """The engine's site test on a production's steps together (every stored finished job)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_step: dict[str, Counter] = defaultdict(Counter)
    for tid, rows in rows_by_t.items():
        for r in rows:
            if r.status in FINAL_TASK_STATUSES:
                counts[r.site][1] += r.count
                if r.status in FAILED_TASK_STATUSES:
                    counts[r.site][0] += r.count
                    per_step[r.site][tid] += r.count
    table = {s: (f, t) for s, (f, t) in counts.items()}
    all_f = sum(f for f, _ in table.values())
    all_t = sum(t for _, t in table.values())
    out = []
    for site, p in insight.failing_sites(table, cfg):
        f, t = table[site]
        sig_rows = {tid: [r for r in rows if r.site == site] for tid, rows in rows_by_t.items()}
        top = top_signatures([r for rows in sig_rows.values() for r in rows], 1)
        steps = tuple(sorted(per_step[site].items(), key=lambda kv: (-kv[1], kv[0])))
        out.append(ProductionSiteHint(site, f, t, all_f - f, all_t - t, p, top[0][0] if top else "", steps))
    return out
