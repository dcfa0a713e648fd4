"""What a cycle returns: one Outcome per transformation, and the CycleResult."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from failover import circuit as circuit_breaker, rules
from failover.blockers import Blocker
from failover.outcomes import count


@dataclass
class Outcome:
    transformation: int
    state: str = "ok"  # ok, skipped, error
    message: str = ""
    decisions: list[rules.Decision] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    blockers: list[Blocker] = field(default_factory=list)
    at_cap: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "transformation": self.transformation,
            "state": self.state,
            "message": self.message,
            "decisions": [d.as_dict() for d in self.decisions],
            "blockers": [b.as_dict() for b in self.blockers],
            "at_cap": self.at_cap,
        }


@dataclass
class CycleResult:
    cycle_id: int | None
    dry_run: bool
    started: float
    finished: float = 0.0
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    # Transformations whose mirror was resynced in full, and the drift found (failover/mirror.py).
    resynced: int = 0
    drift: dict = field(default_factory=dict)
    message: str = ""

    @property
    def seconds(self) -> float:
        return self.finished - self.started

    @property
    def decisions(self) -> list[rules.Decision]:
        return [d for o in self.outcomes.values() for d in o.decisions]

    @property
    def errors(self) -> int:
        """Transformations that failed, plus one for a cycle that stopped before its end (a
        stopped cycle that treated nothing is not "0 errors")."""
        return sum(1 for o in self.outcomes.values() if o.state == "error") + (1 if self.message else 0)

    @property
    def skipped(self) -> int:
        return sum(1 for o in self.outcomes.values() if o.state == "skipped")

    @property
    def unreachable(self) -> int:
        return sum(1 for o in self.outcomes.values() if o.state == "skipped" and o.message == circuit_breaker.SKIPPED)

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    def summary(self) -> str:
        """One line: what was done, errors, skipped, calls; why the cycle stopped, if it did."""
        by_kind: dict[str, int] = defaultdict(int)
        for d in self.decisions:
            by_kind[d.kind] += 1
        verb = "would do" if self.dry_run else "did"
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(by_kind.items())) or "nothing"
        head = "Dry run" if self.dry_run else f"Cycle {self.cycle_id}"
        if self.message:
            head += f" failed ({self.message})"
        text = (
            f"{head}: {count(len(self.outcomes), 'transformation')}, "
            f"{verb} {kinds}; {count(self.errors, 'error')}, {self.skipped} skipped; "
            f"{count(sum(self.calls.values()), 'DIRAC call')} in {self.seconds:.2f} s"
        )
        if self.unreachable:
            text += f"; DIRAC unreachable: {self.unreachable} not tried, the next cycle tries again"
        return text

    def as_json(self) -> dict:
        return {
            "cycle": self.cycle_id,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "calls": self.calls,
            "resynced": self.resynced,
            "drift": self.drift,
            "message": self.message,
            "errors": self.errors,
            "skipped": self.skipped,
            "summary": self.summary(),
            "transformations": [o.as_dict() for o in self.outcomes.values()],
        }
