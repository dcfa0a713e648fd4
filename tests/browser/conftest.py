"""Headless Chromium for the browser tests: Debian's ``chromium`` and ``chromium-driver``.

Selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver, so Selenium Manager never
downloads anything; the tests skip, saying why, only when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.browser.pages import PASSWORDS, Page
from tests.factories import make_user

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1440,1000",
)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(pytest.mark.skip(
                    reason="/usr/bin/chromium is not installed: apt-get install chromium chromium-driver"))


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def screenshots(settings) -> Path:
    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def accounts(django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    for name, role in (("otto", "operator"), ("vera", "viewer")):
        user = make_user(django_user_model, name, role)
        user.set_password(PASSWORDS[name])
        user.save()


@pytest.fixture
def page(browser, live_server, screenshots):
    return Page(browser, live_server.url, screenshots)


@pytest.fixture
def worker(settings):
    """A real Celery worker in this process, on the configured broker: it carries out what the
    pages enqueue (an operator's confirmed action) against the live server's database."""
    from celery.contrib.testing.worker import start_worker

    from dashboard.celery import app

    settings.FAILOVER_ACTION_LOCK_WAIT = 60
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                      shutdown_timeout=30) as w:
        yield w
