"""Screenshots of every page of ``make run`` after it has run a while, into docs/screenshots/.

    .venv/bin/python scripts/screenshots.py                 # 10 minutes of the demo, then the pages
    .venv/bin/python scripts/screenshots.py --minutes 2 --out /tmp/shots

It runs ``make run`` in a temporary VAR_DIR on a free port (its own databases, broker and
account), waits ``--minutes``, then switches to the demo's second policy (propose mode,
``manage.py failover policy --use demo-propose``) and waits two cycles so proposals are waiting,
signs in with headless Chromium (Debian's chromium and chromedriver, the flags of tests/browser)
and saves a full-page PNG of each page. It prints which attention kinds the attention page shows,
then stops ``make run`` with SIGINT, as Ctrl-C does.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Debian's Chromium and its driver, with the flags of tests/browser/conftest.py.
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1440,1000",
)

USER = "demo-operator"
# (file name, path, what to wait for on the page). A page the product does not have (404) is skipped.
PAGES = [
    ("overview", "/", "table.overview"),
    ("overview-attention", "/?attention=on", "table.overview"),
    ("attention", "/attention/", "main"),
    ("proposals", "/proposals/", "main"),
    ("productions", "/productions/", "table.productions"),
    ("production-7", "/productions/7/", "main"),
    ("production-11-stalled", "/productions/11/", "main"),
    ("transformation-4846", "/transformations/4846/", "table#report"),
    ("transformation-4852-failing-config", "/transformations/4852/", "main"),
    ("transformation-4853-flush-limit", "/transformations/4853/", "main"),
    ("transformation-4855-stalled", "/transformations/4855/", "main"),
    ("transformation-4856-bookkeeping", "/transformations/4856/", "main"),
    ("transformation-4859-cannot-complete", "/transformations/4859/", "main"),
    ("transformation-4900-black-hole", "/transformations/4900/", "main"),
    ("jobs-4846-failed", "/transformations/4846/jobs/?status=Failed", "main"),
    ("jobs-4852-retries", "/transformations/4852/jobs/?sort=-task", "main"),
    ("files-4852", "/transformations/4852/files/", "main"),
    ("action-preview-reassign", "/actions/reassign/?t=4846", "main"),
    ("audit", "/audit/", "main"),
    ("audit-entry", None, "main"),  # the newest entry, found on the audit page
    ("policy", "/policy/", "main"),
    ("health", "/health/", "main"),
    ("digests", "/digests/", "main"),
    ("api-docs", "/api/docs/", "main"),
]
KINDS = ("Files at their reassign cap", "Assigned files of finished jobs", "Child still Active, parent done",
         "Tasks with no job", "No progress", "Flush limit reached", "Cannot complete", "Proposal waiting")


def say(text: str) -> None:
    print(f"[screenshots] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-shots-')}")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def shoot(driver, base: str, out: Path, password: str) -> list[str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(css: str):
        WebDriverWait(driver, 60).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))
        WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")

    def save(name: str) -> None:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1440, max(900, min(height, 7000)))
        time.sleep(0.5)  # the charts draw after the load event
        driver.save_screenshot(str(out / f"make-run-{name}.png"))
        driver.set_window_size(1440, 1000)
        say(f"saved make-run-{name}.png")

    driver.get(base + "/accounts/login/")
    wait("#id_username")
    save("login")
    driver.find_element(By.ID, "id_username").send_keys(USER)
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(".topbar .who")
    shown = []
    for name, path, css in PAGES:
        if path is None:
            driver.get(base + "/audit/")
            wait("main")
            links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "main a[href*='/audit/']")
                     if re.search(r"/audit/\d+/$", a.get_attribute("href") or "")]
            if not links:
                continue
            url = links[0]
        else:
            url = base + path
        if missing_page(url):
            say(f"{url}: not on this branch (404), skipped")
            continue
        driver.get(url)
        wait(css)
        save(name)
        if name == "attention":
            text = driver.find_element(By.TAG_NAME, "body").text
            shown = [k for k in KINDS if k in text]
    return shown


def missing_page(url: str) -> bool:
    """Whether the product has no such page: unknown addresses are 404 even before signing in."""
    try:
        urllib.request.urlopen(url, timeout=30)
    except urllib.error.HTTPError as exc:
        return exc.code == 404
    except (urllib.error.URLError, TimeoutError):
        return False
    return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/screenshots.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long make run runs before the pages (10)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    p.add_argument("--keep", action="store_true", help="keep the temporary VAR_DIR (its path is printed)")
    args = p.parse_args(argv)
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    args.out.mkdir(parents=True, exist_ok=True)
    var = Path(tempfile.mkdtemp(prefix="failover-screenshots-"))
    port = free_port()
    password = secrets.token_urlsafe(12)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "SIMDIRAC_DATABASE_URL", "OPENSEARCH_URL", "SIMDIRAC_FAULTS")}
    env.update(VAR_DIR=str(var), RUN_BIND=f"127.0.0.1:{port}", FAILOVER_USER=USER, FAILOVER_PASSWORD=password,
               PYTHONUNBUFFERED="1")
    log = open(var / "make-run.log", "w")
    say(f"make run in {var} on port {port}; its console goes to {var / 'make-run.log'}")
    run = subprocess.Popen(["make", "-s", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/health/", 300)
        started = time.monotonic()
        say(f"the demo is up; waiting {args.minutes:g} minutes")
        while time.monotonic() - started < args.minutes * 60:
            if run.poll() is not None:
                raise SystemExit(f"make run stopped (status {run.returncode}); see {var / 'make-run.log'}")
            time.sleep(5)
        say("switching to the second policy (propose mode) and waiting two cycles")
        subprocess.run([sys.executable, "manage.py", "failover", "policy", "--use", "demo-propose"], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        time.sleep(45)
        driver = browser()
        try:
            shown = shoot(driver, base, args.out, password)
        finally:
            driver.quit()
        missing = [k for k in KINDS if k not in shown]
        say(f"the attention page shows: {', '.join(shown) or 'nothing'}")
        if missing:
            say(f"MISSING on the attention page: {', '.join(missing)}")
        return 1 if missing else 0
    finally:
        try:
            os.killpg(run.pid, signal.SIGINT)
            run.wait(60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(run.pid, signal.SIGKILL)
        log.close()
        if args.keep:
            say(f"kept {var}")
        else:
            shutil.rmtree(var, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
