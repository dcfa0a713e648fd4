"""A circuit breaker between a cycle and DIRAC.

When a DIRAC service is down, every call pays DIRAC's own connection retries times ours; a cycle
over many transformations then takes minutes to learn nothing. After ``DIRAC_CIRCUIT_FAILURES``
consecutive calls that got no answer (``BackendTimeout``: connection refused, reset, timed out),
or as many consecutive calls of one kind (say ``jobs``, JobMonitoring's, while other services
still answer), the circuit opens: the cycle stops calling DIRAC, and the engine marks the
transformations still to treat "skipped: DIRAC unreachable". An answer, even a refusal
(``BackendError`` that is not a timeout), starts the counts of its kind and of all calls again.
The next cycle starts with a closed circuit and tries again.

``guard(backend, circuit)`` wraps any ``DiracBackend`` (real or simulated), so the engine's code
is unchanged apart from where it builds its backend and where it skips work. A fanned-out cycle
runs one engine per transformation; ``for_cycle`` gives the engines of one cycle in one worker
process the same circuit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from failover.errors import BackendError, BackendTimeout

# The DiracBackend Protocol's methods that talk to DIRAC (failover/backends/base.py).
CALLS = frozenset({
    "transformations", "file_counts", "tasks", "files", "jobs",
    "tasks_changed_since", "jobs_changed_since",
    "set_task_status", "set_file_status", "set_transformation_status",
    "job_input_data", "job_output_data", "catalogue_available", "catalogue_exists", "catalogue_files_by_job",
    "job_requests", "set_job_status", "remove_catalogue_files",
})  # fmt: skip

SKIPPED = "DIRAC unreachable"


class CircuitOpen(BackendError):
    """Not sent: the circuit is open. Nothing reached DIRAC, so nothing is unknown."""

    def __init__(self, circuit: Circuit, call: str) -> None:
        super().__init__(circuit.describe(), call=call, retriable=False)


class Circuit:
    def __init__(self, threshold: int) -> None:
        self.threshold = threshold  # 0: never opens
        self.lock = threading.Lock()
        self.consecutive: dict[str, int] = {}
        self.in_a_row = 0  # any kind of call
        self.last_error = ""
        self.opened_by = ""
        self.opened = False

    @property
    def is_open(self) -> bool:
        return self.opened

    def failure(self, call: str, exc: BaseException) -> None:
        with self.lock:
            n = self.consecutive[call] = self.consecutive.get(call, 0) + 1
            self.in_a_row += 1
            self.last_error = str(exc)
            if self.threshold and max(n, self.in_a_row) >= self.threshold and not self.opened:
                self.opened, self.opened_by = True, call

    def success(self, call: str) -> None:
        with self.lock:
            self.consecutive[call] = 0
            self.in_a_row = 0

    def describe(self) -> str:
        return (f"{SKIPPED}: {self.threshold} calls in a row got no answer "
                f"(last: {self.last_error}); not called again this cycle")


class _Guarded:
    """A backend whose DIRAC calls go through a circuit; every other attribute is the backend's."""

    def __init__(self, backend: Any, circuit: Circuit) -> None:
        self._backend = backend
        self.circuit = circuit

    @property
    def unguarded(self) -> Any:
        return self._backend

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._backend, name)
        if name not in CALLS:
            return target
        circuit = self.circuit

        def call(*args: Any, **kwargs: Any) -> Any:
            if circuit.is_open:
                raise CircuitOpen(circuit, name)
            try:
                result = target(*args, **kwargs)
            except BackendTimeout as exc:
                circuit.failure(name, exc)
                raise
            except BackendError:
                circuit.success(name)  # DIRAC answered, if only to say no
                raise
            circuit.success(name)
            return result

        return call


def guard(backend: Any, circuit: Circuit) -> Any:
    if isinstance(backend, _Guarded):
        backend = backend.unguarded
    return _Guarded(backend, circuit)


_BY_CYCLE: OrderedDict[tuple[int, object], Circuit] = OrderedDict()
_BY_CYCLE_LOCK = threading.Lock()
_KEEP = 16


def for_cycle(cycle_id: int, started: object, threshold: int) -> Circuit:
    """The circuit of a fanned-out cycle in this process (the last few cycles are remembered).

    Keyed by the cycle's id and start: a database may give a new cycle the id of a removed one
    (SQLite reuses the highest rowid after a delete), and that cycle must not inherit an open circuit.
    """
    key = (cycle_id, started)
    with _BY_CYCLE_LOCK:
        circuit = _BY_CYCLE.get(key)
        if circuit is None:
            circuit = _BY_CYCLE[key] = Circuit(threshold)
            while len(_BY_CYCLE) > _KEEP:
                _BY_CYCLE.popitem(last=False)
        return circuit
