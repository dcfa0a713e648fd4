"""Recovery's run: read what DIRAC's DataRecoveryAgent reads, check (failover/recovery.py), then act
or propose, every action logged pending and settled like the cycle's.

Per transformation the recovery policy selects (``RecoveryPolicy``), under the transformation's
lock (the one the cycle and the operators' buttons take):

1. reconcile its recovery actions left pending (a crash, a timeout) against DIRAC's state;
2. read its tasks, their Done and Failed jobs, the jobs' input data, ProductionOutputData, the LFNs
   registered with their ``jobID``, catalogue existence of every LFN, and their requests: a few
   batched calls whatever the number of jobs;
3. check every job (``recovery.check_transformation``) and group the findings by case;
4. per case: the jobs', tasks' and files' statuses (kind ``recover``) are carried out in ``act``
   mode and proposed in ``propose`` mode; removing registered outputs (kind ``remove_outputs``) is
   **always** a proposal, whatever the mode. One live proposal per (transformation, case, kind): a
   new finding for the same case replaces the waiting one (marked stale, "superseded").
5. store the findings (``RecoveryFinding``) for the pages, the attention list, the API and digests.

Approving a proposal (``approve``) checks the transformation again now and carries out only the
listed jobs that are still in the same case (for a removal: the listed LFNs whose job's finding
still removes them), so an operator approves what was shown or less.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from failover import circuit as circuit_breaker, leases, locks, recovery as rec
from failover.backends import get_backend
from failover.backends.base import DiracBackend
from failover.cycle.read import Reading
from failover.domain import RECOVER, REMOVE_OUTPUTS, TransformationInfo
from failover.errors import BackendError, BackendTimeout, FailoverError, StaleProposal, UnknownTransformation
from failover.models import ActionLog, RecoveryFinding, RecoveryPolicy
from failover.outcomes import count

log = logging.getLogger(__name__)

FORCED_MINOR = {rec.DONE: "Job forced to Done", rec.FAILED: "Job forced to Failed"}
NO_CATALOGUE = "no file catalogue is configured: recovery's checks need one"


@dataclass
class TransformationReport:
    id: int
    state: str = "ok"  # ok | skipped | error
    message: str = ""
    findings: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        data = {"id": self.id, "findings": self.findings}
        if self.state != "ok":
            data["state"], data["message"] = self.state, self.message
        return data


@dataclass
class RecoveryResult:
    dry_run: bool
    mode: str
    transformations: list[TransformationReport] = field(default_factory=list)
    message: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.message) or any(t.state == "error" for t in self.transformations)

    def as_json(self) -> dict:
        data = {"mode": self.mode, "dry_run": self.dry_run,
                "transformations": [t.as_json() for t in self.transformations]}
        if self.message:
            data["message"] = self.message
        return data

    def summary(self) -> str:
        n = sum(len(t.findings) for t in self.transformations)
        by_state: dict[str, int] = defaultdict(int)
        for t in self.transformations:
            for f in t.findings:
                by_state[f["state"]] += 1
        states = ", ".join(f"{k} {v}" for k, v in sorted(by_state.items())) or "nothing to do"
        head = (f"recovery ({self.mode}{', dry run' if self.dry_run else ''}): "
                f"{count(len(self.transformations), 'transformation')}, {count(n, 'finding')} ({states})")
        return f"{head}; {self.message}" if self.message else head


class Recovery(Reading):
    """One recovery check over the selected transformations."""

    def __init__(self, backend: DiracBackend | None = None, policy: RecoveryPolicy | None = None, *,
                 actor: str = "system", user=None, dry_run: bool = False, retries: int | None = None,
                 backoff: float | None = None):
        self.circuit = circuit_breaker.Circuit(settings.DIRAC_CIRCUIT_FAILURES)
        self.backend = circuit_breaker.guard(backend or get_backend(), self.circuit)
        self.policy = policy or RecoveryPolicy.current()
        self.actor, self.user, self.dry_run = actor, user, dry_run
        self.retries = settings.DIRAC_RETRIES if retries is None else retries
        self.backoff = settings.DIRAC_RETRY_BACKOFF if backoff is None else backoff
        self.owner = locks.new_owner("recovery" if actor == "system" else actor)
        self.lock_seconds = settings.FAILOVER_LEASE_SECONDS
        self.acting = self.policy.mode == RecoveryPolicy.Mode.ACT

    # -- the run ------------------------------------------------------------------------------
    def run(self, ids: Sequence[int] | None = None) -> RecoveryResult:
        result = RecoveryResult(self.dry_run, self.policy.mode)
        try:
            if not self.backend.catalogue_available():
                result.message = NO_CATALOGUE
                for tid in ids or ():
                    result.transformations.append(TransformationReport(tid, "skipped", NO_CATALOGUE))
                return result
            selected = self._select(ids, result)
        except FailoverError as exc:
            result.message = f"recovery stopped: {exc}"
            return result
        renewals = () if self.dry_run else (lambda: locks.renew(self.owner, self.lock_seconds),)
        with leases.Keeper(*renewals, name=f"locks of {self.owner}"):
            for t in selected:
                result.transformations.append(self._treat(t))
        return result

    def _select(self, ids: Sequence[int] | None, result: RecoveryResult) -> list[TransformationInfo]:
        p = self.policy
        if ids:
            found = {t.id: t for t in self._retrying(self.backend.transformations, ids=list(ids))}
            missing = [i for i in ids if i not in found]
            if missing:
                raise UnknownTransformation(", ".join(str(i) for i in missing))
            chosen = []
            for i in ids:
                t = found[i]
                if p.selects(t.id, t.type, t.status):
                    chosen.append(t)
                else:
                    why = ("in TransformationsToIgnore" if t.id in set(p.transformations_to_ignore or ())
                           else f"{t.type} {t.status}: not selected by the recovery policy")
                    result.transformations.append(TransformationReport(t.id, "skipped", why))
            return chosen
        found = self._retrying(self.backend.transformations, statuses=p.transformation_statuses or None)
        return sorted((t for t in found if p.selects(t.id, t.type, t.status)), key=lambda t: t.id)

    def _treat(self, t: TransformationInfo) -> TransformationReport:
        report = TransformationReport(t.id)
        if not self.dry_run and not locks.acquire(t.id, self.owner, self.lock_seconds):
            report.state, report.message = "skipped", f"locked by {locks.holder(t.id) or 'another worker'}"
            return report
        try:
            if not self.dry_run:
                self._reconcile_pending(t.id)
            findings, job_status = self.check(t)
            report.findings = self._carry_out(t, findings, job_status)
        except FailoverError as exc:
            report.state, report.message = "error", str(exc)
            log.error("recovery of %s: %s", t.id, exc)
        except Exception as exc:  # one bad transformation must not stop the others
            report.state, report.message = "error", f"internal error: {exc.__class__.__name__}: {exc}"
            log.exception("recovery of %s: unexpected error", t.id)
        finally:
            if not self.dry_run:
                # What recovery just read of it (a transformation no cycle saw yet gets its row filled).
                locks.release(t.id, self.owner, name=t.name, type=t.type, status=t.status)
        return report

    # -- reading and checking -----------------------------------------------------------------
    def check(self, t: TransformationInfo) -> tuple[list[rec.Finding], dict[int, str]]:
        """Read what the checks need for one transformation and check every Done or Failed job."""
        tasks = [task for task in self._retrying(self.backend.tasks, [t.id]) if task.job]
        jobs = self._retrying(self.backend.jobs, [task.job for task in tasks]) if tasks else {}
        mine = [(task, jobs[task.job]) for task in tasks
                if task.job in jobs and jobs[task.job].status in (rec.DONE, rec.FAILED)]
        if not mine:
            return [], {}
        job_ids = [job.id for _, job in mine]
        with_input = self.policy.with_input(t.type)
        inputs = self._retrying(self.backend.job_input_data, job_ids) if with_input else {}
        files = self._retrying(self.backend.files, [t.id]) if with_input else []
        source = self.policy.output_source
        pod = self._retrying(self.backend.job_output_data, job_ids) if source != rec.SOURCE_METADATA else {}
        registered = (self._retrying(self.backend.catalogue_files_by_job, job_ids)
                      if source != rec.SOURCE_PRODUCTION_OUTPUT_DATA else None)
        lfns = sorted({lfn for j in job_ids for lfn in (*inputs.get(j, ()), *pod.get(j, ()))})
        existence = self._retrying(self.backend.catalogue_exists, lfns) if lfns else {}
        requests = self._retrying(self.backend.job_requests, job_ids)
        facts = []
        for task, job in mine:
            outputs = rec.choose_outputs(source, job.id, pod, existence, registered) or rec.NO_OUTPUTS
            facts.append(rec.job_facts(job=job.id, status=job.status, task=task.task, inputs=inputs.get(job.id, ()),
                                       files=files, existence=existence, outputs=outputs,
                                       request=requests.get(job.id, "")))
        findings = rec.check_transformation(facts, with_input=with_input,
                                            max_reset=self.policy.files_max_reset_counter)
        return [f for f in findings if f.state != rec.NO_MATCH], {job.id: job.status for _, job in mine}

    # -- acting, proposing, storing -----------------------------------------------------------
    def _carry_out(self, t: TransformationInfo, findings: list[rec.Finding], job_status) -> list[dict]:
        by_case: dict[str, list[rec.Finding]] = defaultdict(list)
        for f in findings:
            by_case[f.case].append(f)
        out: list[dict] = []
        rows: list[RecoveryFinding] = []
        for case, group in sorted(by_case.items()):
            entries: dict[int, list[ActionLog]] = defaultdict(list)
            if group[0].state == rec.SKIPPED:
                states = {f.job: "skipped" for f in group}
            elif self.dry_run:
                states = {f.job: "proposed" for f in group}
            else:
                recover = [f for f in group if any(a != rec.REMOVE_OUTPUTS for a in f.actions)]
                # Removing what is not registered is nothing to do (DIRAC's cleanOutputs returns).
                removal = [f for f in group if rec.REMOVE_OUTPUTS in f.actions and f.outputs]
                if recover:
                    details = recover_details(t.id, case, recover)
                    entry = self._act(t.id, RECOVER, details) if self.acting else self._propose(t.id, RECOVER, details)
                    for f in recover:
                        entries[f.job].append(entry)
                if removal:
                    # Deletes data: always a proposal, whatever the mode.
                    proposal = self._propose(t.id, REMOVE_OUTPUTS, removal_details(t.id, case, removal))
                    for f in removal:
                        entries[f.job].append(proposal)
                states = {f.job: _finding_state(entries[f.job]) for f in group}
            for f in group:
                data = {"case": f.case, "job": f.job, "task": f.task, "actions": list(f.actions),
                        "state": states[f.job], "reason": f.reason}
                if f.outputs:
                    data["outputs"] = list(f.outputs)
                if entries[f.job]:
                    data["action_log"] = [e.pk for e in entries[f.job]]
                out.append(data)
                rows.append(RecoveryFinding(
                    transformation_id=t.id, case=f.case, job=f.job, task=f.task, state=states[f.job],
                    reason=f.reason, actions=list(f.actions), inputs=list(f.inputs), outputs=list(f.outputs),
                    source=f.source, action=entries[f.job][-1] if entries[f.job] else None,
                ))
        if not self.dry_run:
            with transaction.atomic():
                RecoveryFinding.objects.filter(transformation_id=t.id).delete()
                RecoveryFinding.objects.bulk_create(rows)
        return out

    def _propose(self, tid: int, kind: str, details: dict) -> ActionLog:
        """One live proposal per (transformation, case, kind): the same one is kept, a different one
        replaces the waiting one (marked ``superseded`` and linked to the new one, as the cycle's
        proposals are; ``ActionLog.one_live_proposal`` leaves recovery kinds to this per-case rule)."""
        case = details["case"]
        waiting = [p for p in ActionLog.objects.filter(transformation_id=tid, kind=kind,
                                                        state=ActionLog.State.PROPOSED)
                   if p.details.get("case") == case]
        for p in waiting:
            if p.details == details:
                return p
        proposal = ActionLog.objects.create(
            transformation_id=tid, kind=kind, state=ActionLog.State.PROPOSED, actor=self.actor,
            reason=details["reason"], details=details,
        )
        for p in waiting:
            p.settle(ActionLog.State.SUPERSEDED, f"superseded by proposal {proposal.pk}: a newer finding",
                     expected=ActionLog.State.PROPOSED, superseded_by=proposal)
        return proposal

    def _act(self, tid: int, kind: str, details: dict, entry: ActionLog | None = None) -> ActionLog:
        if entry is None:
            entry = ActionLog.objects.create(transformation_id=tid, kind=kind, actor=self.actor, user=self.user,
                                             reason=details["reason"], details=details)
        try:
            if kind == RECOVER:
                outcome = self._write_recover(tid, details)
            else:
                outcome = self._write_removal(details)
            written = {**entry.details, "written": outcome["written"]}
            entry.settle(ActionLog.State.DONE if not outcome["errors"] else ActionLog.State.FAILED,
                         outcome["text"], details=written, error="; ".join(outcome["errors"]))
        except circuit_breaker.CircuitOpen as exc:
            entry.settle(ActionLog.State.FAILED, "not sent: DIRAC unreachable", error=str(exc))
        except BackendTimeout as exc:
            ActionLog.objects.filter(pk=entry.pk).update(error=f"no answer from DIRAC ({exc}); outcome unknown")
            self._reconcile(entry)
        except BackendError as exc:
            entry.settle(ActionLog.State.FAILED, "DIRAC refused", error=str(exc))
        entry.refresh_from_db()
        return entry

    def _write_recover(self, tid: int, details: dict) -> dict:
        """The case's actions in the case's order, each once for all its jobs."""
        jobs = details["jobs"]
        texts, written, errors = [], {}, []
        for action in details["actions"]:
            these = [j for j in jobs if action in j["actions"]]
            if not these:
                continue
            if action in rec.JOB_STATUS:
                status = rec.JOB_STATUS[action]
                tasks = sorted({j["task"] for j in these if j["task"] is not None})
                if tasks:
                    self._retrying(self.backend.set_task_status, tid, tasks, status, what="write")
                change = [j["job"] for j in these if j["job_status"] != status]
                if change:
                    self.backend.set_job_status(change, status, minor_status=FORCED_MINOR[status], force=True)
                written[action] = {"tasks": tasks, "jobs": change}
                forced = f" ({count(len(change), 'job')} forced)" if change else ""
                texts.append(f"{count(len(these), 'task')} {status}{forced}")
            elif action in rec.INPUT_STATUS:
                status = rec.INPUT_STATUS[action]
                wanted = {lfn: status for j in these for lfn in j["inputs"]}
                got = dict(self.backend.set_file_status(tid, wanted, force=True))
                written[action] = got
                moved = sum(1 for lfn, s in got.items() if s == status)
                texts.append(f"{moved} of {count(len(wanted), 'input file')} {status}")
                if moved < len(wanted) and any(got.get(lfn) not in (status, None) for lfn in wanted):
                    errors.append(f"some input files did not become {status}")
        return {"text": "; ".join(texts) or "nothing to write", "written": written, "errors": errors}

    def _write_removal(self, details: dict) -> dict:
        lfns = details["lfns"]
        answer = self.backend.remove_catalogue_files(lfns)
        errors = sorted(f"{lfn}: {err}" for lfn, err in answer.items() if err)
        removed = sum(1 for err in answer.values() if not err)
        return {"text": f"{removed} of {count(len(lfns), 'registered output')} removed", "written": answer,
                "errors": errors[:20]}

    # -- reconciling --------------------------------------------------------------------------
    def _reconcile_pending(self, tid: int) -> None:
        pending = ActionLog.objects.filter(transformation_id=tid, state=ActionLog.State.PENDING,
                                           kind__in=(RECOVER, REMOVE_OUTPUTS)).order_by("id")
        for entry in pending:
            self._reconcile(entry)

    def _reconcile(self, entry: ActionLog) -> None:
        """Settle a pending recovery action from what DIRAC shows now; it stays pending if DIRAC can't be read."""
        note = "outcome read back from DIRAC after an interruption"
        details = entry.details
        try:
            if entry.kind == REMOVE_OUTPUTS:
                lfns = details.get("lfns", [])
                exists = self._retrying(self.backend.catalogue_exists, lfns) if lfns else {}
                gone = [lfn for lfn in lfns if not exists.get(lfn, False)]
                entry.settle(ActionLog.State.DONE if len(gone) == len(lfns) else ActionLog.State.INTERRUPTED,
                             f"{len(gone)} of {count(len(lfns), 'registered output')} removed ({note})")
                return
            jobs = details.get("jobs", [])
            wanted_jobs = {j["job"]: rec.JOB_STATUS[a] for j in jobs for a in j["actions"] if a in rec.JOB_STATUS}
            wanted_files = {lfn: rec.INPUT_STATUS[a] for j in jobs for a in j["actions"] if a in rec.INPUT_STATUS
                            for lfn in j["inputs"]}
            now_jobs = self._retrying(self.backend.jobs, list(wanted_jobs)) if wanted_jobs else {}
            now_files = ({f.lfn: f.status for f in self._retrying(self.backend.files, [entry.transformation_id],
                                                                  lfns=sorted(wanted_files))}
                         if wanted_files else {})
            ok_jobs = sum(1 for j, s in wanted_jobs.items() if j in now_jobs and now_jobs[j].status == s)
            ok_files = sum(1 for lfn, s in wanted_files.items() if now_files.get(lfn) == s)
            done = ok_jobs == len(wanted_jobs) and ok_files == len(wanted_files)
            entry.settle(ActionLog.State.DONE if done else ActionLog.State.INTERRUPTED,
                         f"{ok_jobs} of {count(len(wanted_jobs), 'job')} and {ok_files} of "
                         f"{count(len(wanted_files), 'file')} as "
                         f"wanted ({note})")
        except FailoverError as exc:
            log.warning("recovery action %s stays pending: %s", entry.pk, exc)

    # -- approving ----------------------------------------------------------------------------
    def approve(self, proposal: ActionLog) -> ActionLog:
        """Carry out a recovery proposal after checking the transformation again now."""
        if proposal.state != ActionLog.State.PROPOSED:
            raise StaleProposal(f"proposal {proposal.pk} is {proposal.state}, not waiting for approval")
        tid = proposal.transformation_id
        if not locks.acquire(tid, self.owner, self.lock_seconds):
            raise StaleProposal(f"transformation {tid} is locked by {locks.holder(tid) or 'another worker'}; "
                                f"try again")
        try:
            self._reconcile_pending(tid)
            t = self._retrying(self.backend.transformations, ids=[tid])
            if not t:
                return self._stale(proposal, f"transformation {tid} no longer exists")
            findings, _ = self.check(t[0])
            now = {f.job: f for f in findings}
            case = proposal.details.get("case")
            if proposal.kind == RECOVER:
                still = [now[j["job"]] for j in proposal.details.get("jobs", [])
                         if j["job"] in now and now[j["job"]].case == case and now[j["job"]].state == rec.MATCH]
                if not still:
                    return self._stale(proposal, f"no listed job is still in case {case}")
                details = recover_details(tid, case, still)
            else:
                lfns = self._still_removable(proposal, findings)
                if not lfns:
                    return self._stale(proposal, "no listed output is still registered and to be removed")
                details = {**proposal.details, "lfns": lfns}
            updated = ActionLog.objects.filter(pk=proposal.pk, state=ActionLog.State.PROPOSED).update(
                state=ActionLog.State.PENDING, actor=self.actor, user=self.user,
                details={**details, "proposed": proposal.details},
            )
            if not updated:
                raise StaleProposal(f"proposal {proposal.pk} was handled meanwhile")
            proposal.refresh_from_db()
            done = self._act(tid, proposal.kind, details, entry=proposal)
            RecoveryFinding.objects.filter(action=done).update(state=_state_of(done))
            return done
        finally:
            locks.release(tid, self.owner)

    def _still_removable(self, proposal: ActionLog, findings: Sequence[rec.Finding]) -> list[str]:
        """The listed LFNs still registered whose job still calls for their removal: its finding now
        removes them, or it is Failed (every case that removes outputs leaves the job Failed, and in act
        mode the rest of the case was carried out before the removal was approved). A job that became
        Done meanwhile keeps its outputs."""
        removable = {lfn for f in findings if rec.REMOVE_OUTPUTS in f.actions for lfn in f.outputs}
        job_of = {lfn: j["job"] for j in proposal.details.get("jobs", []) for lfn in j.get("outputs", [])}
        listed = list(proposal.details.get("lfns", []))
        exists = self._retrying(self.backend.catalogue_exists, listed) if listed else {}
        jobs = sorted({job_of[lfn] for lfn in listed if lfn in job_of})
        status = {j: info.status for j, info in self._retrying(self.backend.jobs, jobs).items()} if jobs else {}
        return [lfn for lfn in listed if exists.get(lfn) and (
            lfn in removable or status.get(job_of.get(lfn)) == rec.FAILED)]

    def _stale(self, proposal: ActionLog, why: str) -> ActionLog:
        proposal.settle(ActionLog.State.STALE, f"not carried out: {why}", expected=ActionLog.State.PROPOSED,
                        user=self.user)
        return proposal


def _state_of(entry: ActionLog) -> str:
    return {ActionLog.State.PROPOSED: "proposed", ActionLog.State.DONE: "done"}.get(entry.state, entry.state)


def _finding_state(entries: Sequence[ActionLog]) -> str:
    """done when every action of the finding is done; proposed while one waits; else the failure."""
    states = [_state_of(e) for e in entries]
    bad = [s for s in states if s not in ("done", "proposed")]
    if bad:
        return bad[0]
    return "proposed" if "proposed" in states else "done"


def recover_details(tid: int, case: str, findings: Sequence[rec.Finding]) -> dict:
    """What a ``recover`` action or proposal carries: the case, its actions (without removal), the jobs."""
    actions = [a for a in rec.CASES[case].actions if a != rec.REMOVE_OUTPUTS]
    jobs = [{"job": f.job, "task": f.task, "job_status": f.job_status, "inputs": list(f.inputs),
             "actions": [a for a in f.actions if a != rec.REMOVE_OUTPUTS]}
            for f in sorted(findings, key=lambda f: f.job)]
    words = ", ".join(rec.ACTION_LABELS[a] for a in actions)
    return {"case": case, "number": rec.CASES[case].number, "transformation": tid, "actions": actions,
            "jobs": jobs, "reason": f"{rec.CASES[case].title}: {count(len(jobs), 'job')} ({words})"}


def removal_details(tid: int, case: str, findings: Sequence[rec.Finding]) -> dict:
    jobs = [{"job": f.job, "task": f.task, "outputs": list(f.outputs)} for f in sorted(findings, key=lambda f: f.job)]
    lfns = sorted({lfn for f in findings for lfn in f.outputs})
    return {"case": case, "number": rec.CASES[case].number, "transformation": tid, "jobs": jobs, "lfns": lfns,
            "reason": f"{rec.CASES[case].title}: remove {count(len(lfns), 'registered output')} of "
                      f"{count(len(jobs), 'job')}"}


def run_recovery(ids: Sequence[int] | None = None, *, dry_run: bool = False, **kwargs) -> RecoveryResult:
    return Recovery(dry_run=dry_run, **kwargs).run(ids)

