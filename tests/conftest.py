"""Fixtures: personas and scenarios for the web tests (pytest finds them here; nothing to import).

Personas: ``anon`` (not signed in), ``norole`` (signed in, no group), ``viewer``, ``operator``
and ``admin``; each ``*_client`` is a Django test client signed in as that persona.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from django.test import Client

from failover import rules
from failover.models import Policy
from tests.factories import chain_scenario, load_scenario, make_user, run_cycle, seed_policy

# Fixtures of the support modules, for every test without an import (digests: smtp, eager; OpenSearch:
# clean_state, os_config, os_settings; a migrated site: site).
pytest_plugins = ["tests.digests_support", "tests.opensearch_support", "tests.sites"]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


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


@pytest.fixture(autouse=True)
def _fresh_api_throttles():
    """The API's throttles count in the process's cache: each test starts with none counted; nor
    does it find a page an earlier test kept (the whole-page cache, dashboard/pagecache.py: its
    keys hold ids and counts that a rolled-back database gives out again)."""
    from django.core.cache import cache, caches

    cache.clear()
    caches["pages"].clear()


def pytest_collection_finish(session):
    """One pytest session at a time on the real DIRAC services: the machine has one shared set
    (DIRAC_TEST_ROOT), and every DIRAC test empties its databases (tests/dirac/load_scenario.py
    reset()), so two sessions at once fail each other's tests. A session that will run DIRAC-marked
    tests waits for the lock in $DIRAC_TEST_ROOT/run/tests.lock; the lock goes with the process."""
    root = os.environ.get("DIRAC_TEST_ROOT")
    if os.environ.get("DIRAC_TEST_SERVICES") != "1" or not root or not (Path(root) / "run").is_dir():
        return
    if not any(item.get_closest_marker("dirac") for item in session.items):
        return
    import fcntl

    handle = open(Path(root) / "run" / "tests.lock", "a+")  # held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another pytest session on the DIRAC services ({root}/run/tests.lock)",
              file=sys.stderr, flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
    session.config._dirac_services_lock = handle


@pytest.fixture
def anon_client() -> Client:
    return Client()


@pytest.fixture
def viewer_user(django_user_model):
    return make_user(django_user_model, "vera", "viewer")


@pytest.fixture
def operator_user(django_user_model):
    return make_user(django_user_model, "otto", "operator")


@pytest.fixture
def norole_client(django_user_model) -> Client:
    return _client(make_user(django_user_model, "nina", None))


@pytest.fixture
def viewer_client(viewer_user) -> Client:
    return _client(viewer_user)


@pytest.fixture
def operator_client(operator_user) -> Client:
    return _client(operator_user)


@pytest.fixture
def admin_client(django_user_model) -> Client:
    user = make_user(django_user_model, "ada", "admin")
    user.is_staff = True  # as `manage.py users add --role admin` makes it
    user.save()
    return _client(user)


@pytest.fixture
def chain_synced():
    """Production 7 (4846 -> 4847 -> 4848) after a cycle that only copied job statuses.

    So the pages have rows and a stored report, and the operators' buttons have work: 4846 can
    be completed, 4847 has three Assigned files of a Failed and a Killed task to reassign.
    """
    seed_policy()
    load_scenario(chain_scenario())
    return run_cycle([rules.SYNC])


@pytest.fixture
def chain_proposed():
    """The same production under a policy in propose mode, after one cycle: two proposals."""
    seed_policy(mode=Policy.Mode.PROPOSE)
    load_scenario(chain_scenario())
    return run_cycle()
