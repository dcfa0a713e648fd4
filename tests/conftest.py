from __future__ import annotations

import pytest

from failover.simulated.backend import SimulatedDirac


def pytest_configure(config):
    """Tests run without `collectstatic`: Django's plain storage and the finders instead of the
    hashed, compressed manifest storage of the settings. The manifest storage itself is tested
    against a real collectstatic in tests/test_static.py. (Not manifest_strict=False in the
    settings: that would turn a forgotten collectstatic in production into silent unhashed,
    uncached links instead of a loud error.)"""
    from django.conf import settings

    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    settings.WHITENOISE_USE_FINDERS = True


@pytest.fixture
def sim(db):
    """The simulated DIRAC on the test databases."""
    return SimulatedDirac()
