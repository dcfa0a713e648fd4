"""Latency and faults injected into the simulated DIRAC's calls.

Fault specification (setting ``SIMDIRAC_FAULTS`` or ``--faults``), comma-separated items:

- ``error@N``: the Nth call (1-based, counted by this adapter) fails with an error;
- ``timeout@N``: the Nth call times out before DIRAC acted (nothing changed);
- ``lost@N``: the Nth call acts in DIRAC, then its answer is lost as a timeout (outcome unknown
  to the caller, the nastiest case for idempotency);
- ``error%P`` / ``timeout%P`` / ``lost%P``: each call fails that way with probability P (0..1);
- ``seed=S``: the random seed of the rates, for runs that repeat; without it each process (and
  each adapter) draws from a seed of its own (os.urandom), so N processes with a 10% rate fail
  about 10% of all their calls rather than the same calls in every process;
- a prefix ``METHOD:`` limits an item to one adapter method, e.g. ``set_file_status:error@1``
  (N then counts that method's calls only).
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field

from failover.errors import ConfigurationError

KINDS = ("error", "timeout", "lost")
_ITEM = re.compile(r"^(?:(?P<method>[a-z_]+):)?(?P<kind>error|timeout|lost)(?P<op>[@%])(?P<value>[0-9.]+)$")


@dataclass
class FaultRule:
    kind: str
    method: str | None = None
    nth: int | None = None
    rate: float | None = None


@dataclass
class FaultPlan:
    rules: list[FaultRule] = field(default_factory=list)
    seed: int | None = None  # None: a fresh seed from the operating system

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        plan = cls()
        for raw in (spec or "").split(","):
            item = raw.strip()
            if not item:
                continue
            if item.startswith("seed="):
                try:
                    plan.seed = int(item[5:])
                except ValueError:
                    raise ConfigurationError(f"fault {item!r}: the seed must be an integer") from None
                continue
            match = _ITEM.match(item)
            if not match:
                raise ConfigurationError(
                    f"fault {item!r} is not understood (expected e.g. error@3, timeout%0.1, "
                    "lost@2, set_file_status:error@1, seed=7)"
                )
            rule = FaultRule(kind=match["kind"], method=match["method"])
            try:
                if match["op"] == "@":
                    rule.nth = int(match["value"])
                    if rule.nth < 1:
                        raise ValueError
                else:
                    rule.rate = float(match["value"])
                    if not 0 <= rule.rate <= 1:
                        raise ValueError
            except ValueError:
                raise ConfigurationError(
                    f"fault {item!r}: @ takes a call number from 1, % a probability from 0 to 1"
                ) from None
            plan.rules.append(rule)
        return plan


class FaultInjector:
    def __init__(self, plan: FaultPlan):
        self.plan = plan
        # Seeded from the OS when no seed is given: a forked worker must not replay its parent's
        # (or a sibling's) sequence, which random.Random(0) in every process did.
        seed = plan.seed if plan.seed is not None else int.from_bytes(os.urandom(8), "big") ^ os.getpid()
        self.seed = seed
        self.random = random.Random(seed)
        self.count = 0
        self.by_method: dict[str, int] = {}

    def next_fault(self, method: str) -> str | None:
        """Count one call of ``method`` and return the fault it suffers, if any."""
        self.count += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1
        for rule in self.plan.rules:
            if rule.method and rule.method != method:
                continue
            n = self.by_method[method] if rule.method else self.count
            if rule.nth is not None and rule.nth == n:
                return rule.kind
            if rule.rate is not None and self.random.random() < rule.rate:
                return rule.kind
        return None
