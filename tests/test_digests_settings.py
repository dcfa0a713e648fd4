"""The e-mail settings block: read from the environment by strict parsers, checked at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.test_settings import ROOT, run_check

NAMES = ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS", "EMAIL_USE_SSL",
         "EMAIL_TIMEOUT", "DEFAULT_FROM_EMAIL")


def settings_with(tmp_path, **env) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in NAMES}
    base.update(DJANGO_SETTINGS_MODULE="dashboard.settings", VAR_DIR=str(tmp_path), **env)
    code = ("import django, json; django.setup(); from django.conf import settings as s; "
            f"print(json.dumps({{n: getattr(s, n) for n in {NAMES!r}}}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_defaults_send_nothing(tmp_path):
    s = settings_with(tmp_path)
    assert s == {"EMAIL_HOST": "", "EMAIL_PORT": 25, "EMAIL_HOST_USER": "", "EMAIL_HOST_PASSWORD": "",
                 "EMAIL_USE_TLS": False, "EMAIL_USE_SSL": False, "EMAIL_TIMEOUT": 30.0,
                 "DEFAULT_FROM_EMAIL": "noreply@ctao.dirac"}


@pytest.mark.parametrize("env, port", [({"EMAIL_USE_TLS": "yes"}, 587), ({"EMAIL_USE_SSL": "1"}, 465),
                                       ({"EMAIL_USE_TLS": "on", "EMAIL_PORT": "2525"}, 2525)])
def test_the_port_follows_tls_unless_given(tmp_path, env, port):
    assert settings_with(tmp_path, EMAIL_HOST="smtp.example.org", **env)["EMAIL_PORT"] == port


@pytest.mark.parametrize(
    "env, message",
    [
        ({"EMAIL_USE_TLS": "treu"}, "EMAIL_USE_TLS='treu' is not a boolean"),
        ({"EMAIL_USE_SSL": "maybe"}, "EMAIL_USE_SSL='maybe' is not a boolean"),
        ({"EMAIL_USE_TLS": "true", "EMAIL_USE_SSL": "true"}, "EMAIL_USE_TLS and EMAIL_USE_SSL are both true"),
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT='smtp' is not an integer"),
        ({"EMAIL_PORT": "0"}, "EMAIL_PORT='0' must be at least 1"),
        ({"EMAIL_PORT": "70000"}, "EMAIL_PORT=70000 is not a port"),
        ({"EMAIL_TIMEOUT": "soon"}, "EMAIL_TIMEOUT='soon' is not a number"),
        ({"DEFAULT_FROM_EMAIL": "failover"}, "DEFAULT_FROM_EMAIL='failover' is not an e-mail address"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, env, message):
    done = run_check(tmp_path, **env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert message in done.stderr, done.stderr
