"""``manage.py dirac check``: can this process talk to DIRAC, and may it act?

Says in words whether the configuration (DIRACSYSCONFIG and the Configuration Server URL), the
credentials (a proxy that exists, has not expired, and whose group has ProductionManagement) and
each service the product uses answer. Exit status 0 when all is fine, 1 otherwise; a problem is
always a sentence, never a traceback.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from failover.outcomes import count

# System/Service names the failover product calls, with what it needs them for.
SERVICES = [
    ("Transformation/TransformationManager", "transformations, files and tasks"),
    ("Production/ProductionManager", "productions and parent links"),
    ("WorkloadManagement/JobMonitoring", "job states and sites"),
]
REQUIRED_PROPERTY = "ProductionManagement"


class Command(BaseCommand):
    help = "Check the connection to DIRAC: configuration, credentials and services."
    # A diagnostic of the DIRAC connection: it must run even when the rest of the project's
    # checks fail (e.g. no database yet).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["check"], help="what to do (only: check)")
        parser.add_argument(
            "--timeout",
            type=float,
            default=10.0,
            help="seconds to wait for each service (default 10)",
        )

    def handle(self, *args, **options):
        problems = _Checker(self.stdout, self.style, options["timeout"]).run()
        if problems:
            raise CommandError(
                f"DIRAC check failed: {count(problems, 'problem')} (see above)",
                returncode=1,
            )
        self.stdout.write(self.style.SUCCESS("DIRAC check passed: configuration, credentials and services are fine."))


class _Checker:
    def __init__(self, out, style, timeout: float) -> None:
        self.out = out
        self.style = style
        self.timeout = timeout
        self.problems = 0

    def ok(self, what: str, text: str) -> None:
        self.out.write(f"{what:<22} OK    {text}")

    def bad(self, what: str, text: str) -> None:
        self.problems += 1
        self.out.write(self.style.ERROR(f"{what:<22} FAIL  {text}"))

    def skip(self, what: str, text: str) -> None:
        self.out.write(f"{what:<22} SKIP  {text}")

    def run(self) -> int:
        try:
            self._run()
        except Exception as exc:  # the promise is: a sentence, never a traceback
            self.bad("check", f"unexpected error while checking: {type(exc).__name__}: {exc}")
        return self.problems

    def _run(self) -> None:
        cs_urls = self._configuration()
        proxy = self._proxy_file()
        try:
            from DIRAC import gLogger
        except ImportError:
            self.bad("DIRAC", "DIRAC is not installed in this Python; install the product's 'dirac' extra")
            return
        # DIRAC logs its retries on the console; this command says what matters in its own words.
        gLogger.setLevel("FATAL")
        if not cs_urls:
            self.skip("credentials", "not checked: no Configuration Server to ask")
            self._skip_services("no Configuration Server to learn service URLs from")
            return
        proxy_ok = self._proxy(proxy)
        if not self._initialise():
            self._skip_services("DIRAC could not start")
            return
        cs_ok = self._whoami(cs_urls, proxy_ok)
        if not cs_ok:
            self._skip_services("the Configuration Server does not answer")
            return
        self._services()

    # -- configuration ---------------------------------------------------------------------------
    def _configuration(self) -> list[str]:
        files = [f.strip() for f in os.environ.get("DIRACSYSCONFIG", "").split(",") if f.strip()]
        if not files:
            home = Path.home() / ".dirac.cfg"
            if home.is_file():
                files = [str(home)]
            else:
                self.bad(
                    "configuration",
                    "DIRACSYSCONFIG is not set and there is no ~/.dirac.cfg: "
                    "point DIRACSYSCONFIG at a dirac.cfg naming /DIRAC/Configuration/Servers",
                )
                return []
        urls: list[str] = []
        for name in files:
            path = Path(name)
            if not path.is_file():
                self.bad("configuration", f"DIRACSYSCONFIG names {name}, which does not exist")
                return []
            try:
                from diraccfg import CFG

                cfg = CFG().loadFromFile(str(path))
                servers = cfg.getOption("DIRAC/Configuration/Servers", [])
            except Exception as exc:
                self.bad("configuration", f"{name} cannot be read as a DIRAC configuration: {exc}")
                return []
            urls += [u for u in servers if u not in urls]
        if not urls:
            self.bad("configuration", f"{', '.join(files)} names no /DIRAC/Configuration/Servers")
            return []
        self.ok("configuration", f"{', '.join(files)}; Configuration Server {', '.join(urls)}")
        return urls

    # -- credentials -----------------------------------------------------------------------------
    @staticmethod
    def _proxy_file() -> str | None:
        from failover.backends.dirac import proxy_path

        return proxy_path()

    def _proxy(self, path: str | None) -> bool:
        if not path or not Path(path).is_file():
            self.bad(
                "credentials",
                f"no proxy at {path}: create one with dirac-proxy-init -g <group with "
                f"{REQUIRED_PROPERTY}> or set X509_USER_PROXY",
            )
            return False
        try:
            from DIRAC.Core.Security.X509Chain import X509Chain

            chain = X509Chain()
            res = chain.loadProxyFromFile(path)
            if not res["OK"]:
                self.bad("credentials", f"{path} is not a readable proxy: {res['Message']}")
                return False
            left = chain.getRemainingSecs()
            group = chain.getDIRACGroup(ignoreDefault=True)
        except Exception as exc:
            self.bad("credentials", f"{path} is not a readable proxy: {exc}")
            return False
        seconds = int(left.get("Value", 0)) if left.get("OK") else 0
        if seconds <= 0:
            self.bad("credentials", f"the proxy {path} has expired: renew it with dirac-proxy-init")
            return False
        group_name = group.get("Value") if group.get("OK") else None
        self.ok(
            "credentials",
            f"proxy {path}, valid for {seconds // 3600} h {seconds % 3600 // 60} min"
            + (f", group {group_name}" if group_name else ""),
        )
        return True

    def _initialise(self) -> bool:
        from failover.backends.dirac import initialise_dirac
        from failover.errors import BackendError

        try:
            initialise_dirac()
        except BackendError as exc:
            self.bad("configuration", f"DIRAC could not start with this configuration: {exc.dirac_message}")
            return False
        return True

    def _whoami(self, cs_urls: list[str], proxy_ok: bool) -> bool:
        from DIRAC.ConfigurationSystem.Client.ConfigurationClient import ConfigurationClient

        last = ""
        for url in cs_urls:
            client = ConfigurationClient(url=url)
            client.timeout = self.timeout
            started = time.monotonic()
            res = client.whoami()
            if res["OK"]:
                break
            last = f"{url}: {res['Message']} (after {time.monotonic() - started:.0f} s)"
        else:
            if proxy_ok:
                self.bad("configuration", f"the Configuration Server does not answer: {last}")
            else:
                self.bad("configuration", f"the Configuration Server could not be asked without a proxy: {last}")
            return False
        who = res["Value"]
        properties = list(who.get("properties") or [])
        self.ok("configuration", f"the Configuration Server answers ({url})")
        user, group = who.get("username", "?"), who.get("group", "?")
        if REQUIRED_PROPERTY in properties:
            self.ok("credentials", f"user {user}, group {group} has {REQUIRED_PROPERTY}")
        else:
            self.bad(
                "credentials",
                f"user {user}, group {group} lacks {REQUIRED_PROPERTY} (it has "
                f"{', '.join(properties) or 'no properties'}): the product could read but not act; "
                f"use a proxy of a group with {REQUIRED_PROPERTY}",
            )
        return True

    # -- services --------------------------------------------------------------------------------
    def _skip_services(self, why: str) -> None:
        for name, _ in SERVICES:
            self.skip(name.split("/")[1], f"not checked: {why}")

    def _services(self) -> None:
        from DIRAC.Core.Base.Client import Client

        for name, purpose in SERVICES:
            label = name.split("/")[1]
            client = Client(url=name)
            client.timeout = self.timeout
            started = time.monotonic()
            try:
                res = client.ping()
            except Exception as exc:
                res = {"OK": False, "Message": f"{type(exc).__name__}: {exc}"}
            took = time.monotonic() - started
            if res.get("OK"):
                version = (res.get("Value") or {}).get("version", "")
                self.ok(label, f"{name} answers ({purpose}){f', DIRAC {version}' if version else ''}")
            else:
                self.bad(label, f"{name} does not answer ({purpose}): {res.get('Message')} after {took:.0f} s")

