from __future__ import annotations

import pytest

from failover.simulated.backend import SimulatedDirac


@pytest.fixture
def sim(db):
    """The simulated DIRAC on the test databases."""
    return SimulatedDirac()
