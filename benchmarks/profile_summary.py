"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) as text: where time goes.

    python -m benchmarks.profile_summary PROFILE.raw [--under run_cycle] [--top 25]
    python -m benchmarks.profile_summary PROFILE.raw --engine   # our cycle by part

Inclusive time per function (a frame counted once per sample even when recursive) and self time,
as shares of the samples; ``--under`` keeps only samples whose stack passes through that function.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>.+?)(?::(?P<line>\d+))?\)$")


def _label(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m["file"]
    for marker in ("site-packages/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{m['func']} ({path})"


# Where our cycle's time goes, by the first of these found in a sample's stack (in this order).
ENGINE_PARTS = (
    ("SimulatedDirac.", "simulated DIRAC answering"),
    ("SqlAggregateStore.write", "aggregate store write"),
    ("bump_counters", "reassign counters"),
    ("(failover/locks.py)", "locks"),
    ("Settling._reconcile_pending", "reconcile pending actions"),
    ("save_blockers", "blockers (attention rows)"),
    ("Engine._mirror", "mirror (TransformationState)"),
    ("read_counters", "read reassign counters"),
    ("Acting._act", "action log, settle"),
    ("aggregate_jobs", "aggregate jobs"),
    ("plan_transformation", "rules"),
    ("needs_assigned_files", "rules"),
)


def engine_parts(path: str) -> str:
    parts: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if "run_cycle" not in stack or not count.isdigit():
                continue
            frames = [_label(f) for f in stack.split(";")]
            label = "other engine work"
            for key, name in ENGINE_PARTS:
                if any(key in f for f in frames):
                    label = name
                    break
            parts[label] += int(count)
            total += int(count)
    if not total:
        return "no samples under run_cycle"
    return "\n".join([f"{total} samples under run_cycle"]
                     + [f"  {100 * n / total:5.1f}%  {name}" for name, n in parts.most_common()])


def summarise(path: str, under: str | None = None, top: int = 25) -> str:
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [_label(f) for f in stack.split(";")]
            if under and not any(f.split(" (", 1)[0].split(".")[-1] == under for f in frames):
                continue
            n = int(count)
            total += n
            for f in set(frames):
                inclusive[f] += n
            self_time[frames[-1]] += n
    if not total:
        return "no samples"
    out = [f"{total} samples" + (f" under {under}" if under else "")]
    out.append("inclusive:")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    out.append("self:")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_time.most_common(top)]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_summary")
    p.add_argument("profile")
    p.add_argument("--under")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--engine", action="store_true", help="our cycle's time by part (see ENGINE_PARTS)")
    args = p.parse_args()
    print(engine_parts(args.profile) if args.engine else summarise(args.profile, args.under, args.top))


if __name__ == "__main__":
    main()
