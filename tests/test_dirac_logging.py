"""DIRAC's log records go to the product's log, one line each, never to standard output
(failover/backends/dirac.py: route_dirac_logging). No DIRAC needed: DIRAC's gLogger is a Python
logger named "dirac" with a handler on sys.stdout, which is what this builds."""

from __future__ import annotations

import logging
import sys

from failover.backends.dirac import route_dirac_logging


def test_dirac_records_leave_stdout_and_lose_their_traceback(capsys, caplog):
    dirac = logging.getLogger("dirac")
    saved = (list(dirac.handlers), dirac.propagate, dirac.level)
    dirac.propagate = False
    dirac.setLevel(logging.DEBUG)
    stdout_handler = logging.StreamHandler(sys.stdout)  # DIRAC's StdoutBackend
    dirac.addHandler(stdout_handler)
    try:
        route_dirac_logging()
        assert stdout_handler not in dirac.handlers
        with caplog.at_level(logging.INFO, logger="failover.dirac"):
            try:
                raise ConnectionError("SSL handshake failed\nsecond line")
            except ConnectionError:
                logging.getLogger("dirac.Framework").error("Issue getting socket:\nmore", exc_info=True)
            logging.getLogger("dirac.Framework").info("Retry connection : 1")  # below WARNING: dropped
            # DIRAC attaches its backends again (DIRAC.initialize does): routed again on next call.
            dirac.addHandler(stdout_handler)
            route_dirac_logging()
            logging.getLogger("dirac").warning("Non-responding URL temporarily banned")
        out = capsys.readouterr().out
        assert out == ""
        lines = [r.getMessage() for r in caplog.records if r.name == "failover.dirac"]
        assert lines == [
            "DIRAC dirac.Framework: Issue getting socket: (ConnectionError: SSL handshake failed)",
            "DIRAC dirac: Non-responding URL temporarily banned",
        ]
        assert all(r.exc_info is None for r in caplog.records if r.name == "failover.dirac")
    finally:
        for h in list(dirac.handlers):
            dirac.removeHandler(h)
        for h in saved[0]:
            dirac.addHandler(h)
        dirac.propagate, dirac.level = saved[1], saved[2]
