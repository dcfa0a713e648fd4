"""Read: what a batch of transformations needs from DIRAC, in a few batched calls."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

from failover import rules
from failover.domain import ASSIGNED, JobInfo, TaskInfo, TransformationInfo
from failover.errors import BackendError, FailoverError, UnknownTransformation
from failover.models import ReassignCounter

log = logging.getLogger(__name__)
T = TypeVar("T")


class Reading:
    # -- reading DIRAC ------------------------------------------------------------------------
    def _retrying(self, fn: Callable[..., T], *args, what: str = "read", **kwargs) -> T:
        """A call that is safe to repeat (a read, or setting task statuses), retried with
        exponential backoff. Other writes are never repeated blindly: they are reconciled."""
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except BackendError as exc:
                if not exc.retriable or attempt >= self.retries:
                    raise
                pause = self.backoff * (2**attempt)
                log.warning("DIRAC %s failed (%s); retry %d in %.1f s", what, exc, attempt + 1, pause)
                time.sleep(pause)
                attempt += 1

    def _policy_selects(self, t: TransformationInfo) -> bool:
        p = self.policy
        return (not p.transformation_statuses or t.status in p.transformation_statuses) and (
            not p.transformation_types or t.type in p.transformation_types
        )

    def select(self) -> list[TransformationInfo]:
        """The transformations the policy selects now (one call)."""
        self.also_read, self.prefetched = [], {}
        return self._select(None)

    def _select(self, ids: Sequence[int] | None) -> list[TransformationInfo]:
        p = self.policy
        if ids:
            found = self._retrying(self.backend.transformations, ids=[*ids, *self.also_read])
            self.prefetched = {t.id: t for t in found if t.id not in ids}
            found = [t for t in found if t.id in ids]
            missing = set(ids) - {t.id for t in found}
            if missing:
                raise UnknownTransformation(", ".join(str(i) for i in sorted(missing)))
            return found
        return self._retrying(
            self.backend.transformations,
            statuses=p.transformation_statuses or None,
            types=p.transformation_types or None,
        )

    def _read_batch(self, batch: Sequence[TransformationInfo]) -> tuple[dict[int, list[TaskInfo]], dict[int, JobInfo]]:
        tasks = self._retrying(self.backend.tasks, [t.id for t in batch])
        tasks_by_t: dict[int, list[TaskInfo]] = defaultdict(list)
        for task in tasks:
            tasks_by_t[task.transformation].append(task)
        job_ids = [task.job for task in tasks if task.job]
        jobs = self._retrying(self.backend.jobs, job_ids) if job_ids else {}
        return tasks_by_t, jobs

    def _read_assigned(self, batch, tasks_by_t, jobs) -> tuple[dict[int, list], str]:
        need = [t.id for t in batch if rules.needs_assigned_files(t, tasks_by_t.get(t.id, []), jobs, self.rules_policy)]
        by_t: dict[int, list] = defaultdict(list)
        if not need:
            return by_t, ""
        try:
            for f in self._retrying(self.backend.files, need, statuses=[ASSIGNED]):
                by_t[f.transformation].append(f)
        except FailoverError as exc:
            return by_t, f"reading Assigned files failed: {exc}"
        return by_t, ""

    @staticmethod
    def _counters(ids: Sequence[int]) -> dict[int, dict[str, int]]:
        out: dict[int, dict[str, int]] = defaultdict(dict)
        for tid, lfn, n in ReassignCounter.objects.filter(transformation_id__in=ids).values_list(
            "transformation_id", "lfn", "count"
        ):
            out[tid][lfn] = n
        return out


def topological(transformations: Sequence[TransformationInfo]) -> list[TransformationInfo]:
    """Parents before children, otherwise by id."""
    by_id = {t.id: t for t in transformations}
    depth: dict[int, int] = {}

    def level(t: TransformationInfo) -> int:
        if t.id in depth:
            return depth[t.id]
        depth[t.id] = 0  # guards against a cycle in bad data
        parent = rules.parent_of(t)
        depth[t.id] = level(by_id[parent]) + 1 if parent in by_id else 0
        return depth[t.id]

    return sorted(transformations, key=lambda t: (level(t), t.id))
