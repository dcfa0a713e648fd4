"""Production security settings, login throttling and the admin role's limits."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_user

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(databases="__all__")


def readme_production_example() -> dict[str, str]:
    """The ``export`` lines of the first sh block under README's "Running behind a proxy"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running behind a proxy", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    env = {}
    for line in block.splitlines():
        m = re.match(r'export (\w+)=("([^"]*)"|(\S*))', line.strip())
        if m:
            env[m.group(1)] = m.group(3) if m.group(3) is not None else m.group(4)
    return env


def run_check(env_extra: dict, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "FAILOVER_"))
           and k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL")}
    env.update(env_extra, VAR_DIR=str(tmp_path))
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_the_readme_production_example(tmp_path):
    example = readme_production_example()
    assert example["FAILOVER_HTTPS"] == "true" and "SECURE_PROXY_SSL_HEADER" in example
    # The example reads the key from a file ("$(cat ...)"); a real random key stands in for it.
    example = {k: (secrets.token_urlsafe(50) if v.startswith("$(") else v) for k, v in example.items()}
    result = run_check(example, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_check_deploy_names_what_is_missing_without_the_switch(tmp_path):
    result = run_check({"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "failover.example.org"}, tmp_path)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    for code in ("W004", "W008", "W012", "W016"):
        assert f"security.{code}" in out, code


def test_a_malformed_proxy_header_stops_start_up_with_its_name(tmp_path):
    result = run_check({"SECURE_PROXY_SSL_HEADER": "X Forwarded Proto"}, tmp_path)
    assert result.returncode == 1
    assert "SECURE_PROXY_SSL_HEADER='X Forwarded Proto' is not a header name" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_proxy_header_and_the_switch_reach_django(tmp_path):
    code = ("from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, "
            "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
            "s.SECURE_HSTS_PRELOAD)")
    env = {**os.environ, "VAR_DIR": str(tmp_path), "FAILOVER_HTTPS": "true", "SECURE_HSTS_SECONDS": "600",
           "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto: https", "DJANGO_SETTINGS_MODULE": "dashboard.settings"}
    out = subprocess.run([sys.executable, "-c", "import django; django.setup(); " + code], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["('HTTP_X_FORWARDED_PROTO',", "'https')", "True", "True", "True", "600", "True",
                                  "False"], out.stderr


def test_https_redirect_and_secure_cookies_when_switched_on(settings, client, django_user_model):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    r = client.get("/accounts/login/")
    assert r.status_code == 301 and r["Location"] == "https://testserver/accounts/login/"
    assert client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
    assert client.get("/health/", {"workers": "0"}).status_code in (200, 503)  # exempt, for monitors


# -- login throttling ---------------------------------------------------------------------------


@pytest.fixture
def pat(django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user(django_user_model, "pat", "viewer")
    user.set_password("right-password")
    user.save()
    return user


def login(password, username="pat", address="10.0.0.1"):
    return Client(REMOTE_ADDR=address).post(reverse("login"), {"username": username, "password": password})


def test_wrong_passwords_lock_the_account_for_the_cool_off_then_it_opens(pat, settings, caplog):
    limit = settings.AXES_FAILURE_LIMIT
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(limit - 1):
            assert login("wrong").status_code == 200  # the form again, with its error
        assert login("wrong").status_code == 429
        # The right password, from another address too: refused within the window.
        refused = login("right-password", address="10.0.0.2")
        assert refused.status_code == 429 and "Too many wrong passwords" in refused.content.decode()
        assert "_auth_user_id" not in refused.client.session
        clock.shift(settings.AXES_COOLOFF_TIME - timedelta(seconds=5))
        assert login("right-password", address="10.0.0.3").status_code == 429  # still within it
        clock.shift(timedelta(seconds=10))
        ok = login("right-password", address="10.0.0.3")
        assert ok.status_code == 302 and ok["Location"] == reverse("overview")
    assert any("Locking out" in r.getMessage() and "pat" in r.getMessage() for r in caplog.records)


def test_the_limit_is_per_address_too(pat, django_user_model, settings):
    other = make_user(django_user_model, "quinn", "viewer")
    other.set_password("quinns-password")
    other.save()
    for i in range(settings.AXES_FAILURE_LIMIT):
        login("guess", username=f"nobody{i}", address="10.9.9.9")  # a different account each time
    assert login("quinns-password", username="quinn", address="10.9.9.9").status_code == 429
    assert login("quinns-password", username="quinn", address="10.0.0.8").status_code == 302


def test_failures_during_the_lock_do_not_extend_it(pat, settings):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(settings.AXES_FAILURE_LIMIT):
            login("wrong")
        for _ in range(3):
            clock.shift(settings.AXES_COOLOFF_TIME / 4)
            assert login("wrong").status_code == 429
        clock.shift(settings.AXES_COOLOFF_TIME / 4 + timedelta(seconds=5))
        assert login("right-password").status_code == 302


def test_the_api_basic_auth_is_throttled_alike(pat, settings):
    def api(password, address="10.0.1.1"):
        token = base64.b64encode(f"pat:{password}".encode()).decode()
        return Client(REMOTE_ADDR=address).get("/api/transformations/", HTTP_AUTHORIZATION=f"Basic {token}")

    assert api("right-password").status_code == 200
    with time_machine.travel(timezone.now(), tick=False) as clock:
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            assert api("wrong").status_code == 401
        assert api("wrong").status_code == 429
        assert api("right-password", address="10.0.1.2").status_code == 429
        assert login("right-password", address="10.0.1.3").status_code == 429  # the same account's lock
        clock.shift(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
        assert api("right-password", address="10.0.1.2").status_code == 200


def test_the_client_address_behind_a_proxy_comes_from_x_forwarded_for(pat, settings):
    settings.AXES_IPWARE_PROXY_COUNT = 1
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")

    def via_proxy(client_address, username):
        return Client(REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR=f"{client_address}, 10.0.0.254").post(
            reverse("login"), {"username": username, "password": "guess"})

    for i in range(settings.AXES_FAILURE_LIMIT):
        via_proxy("192.0.2.7", f"nobody{i}")
    assert via_proxy("192.0.2.7", "someone").status_code == 429
    assert via_proxy("192.0.2.8", "someone").status_code == 200  # another client behind the same proxy


def test_without_a_proxy_a_forged_x_forwarded_for_does_not_dodge_the_limit(pat, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        Client(REMOTE_ADDR="10.7.7.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").post(
            reverse("login"), {"username": f"nobody{i}", "password": "guess"})
    forged = Client(REMOTE_ADDR="10.7.7.7", HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert forged.post(reverse("login"), {"username": "x", "password": "y"}).status_code == 429


# -- the admin role cannot raise privileges -----------------------------------------------------


@pytest.fixture
def admin_world(django_user_model):
    ada = make_user(django_user_model, "ada", "admin")
    ada.is_staff = True
    ada.save()
    vera = make_user(django_user_model, "vera", "viewer")
    root = django_user_model.objects.create_superuser("root", "root@example.org", "root-password")
    wheel = Group.objects.create(name="wheel")  # a group a superuser made, with every permission
    from django.contrib.auth.models import Permission

    wheel.permissions.set(Permission.objects.all())
    client = Client()
    client.force_login(ada)
    return {"ada": ada, "vera": vera, "root": root, "wheel": wheel, "client": client,
            "all_perms": list(Permission.objects.values_list("pk", flat=True))}


def change(client, user, **fields):
    data = {"username": user.username, "first_name": "", "last_name": "", "email": "", "is_active": "on",
            "groups": [g.pk for g in user.groups.all()], **fields}
    return client.post(f"/admin/auth/user/{user.pk}/change/", data)


def privileges(user) -> tuple:
    user.refresh_from_db()
    return (user.is_superuser, user.is_staff, set(user.user_permissions.all()),
            set(user.groups.values_list("name", flat=True)))


@pytest.mark.parametrize("who", ["ada", "vera"])
def test_the_admin_role_cannot_make_anyone_superuser_or_give_permissions(admin_world, who):
    w = admin_world
    target = w[who]
    before = privileges(target)
    admin_group = Group.objects.get(name="admin")
    r = change(w["client"], target, is_superuser="on", is_staff="on", user_permissions=w["all_perms"],
               groups=[w["wheel"].pk, admin_group.pk])
    # The wheel group is not offered: the form is refused, and nothing changed.
    assert r.status_code == 200 and "Select a valid choice" in r.content.decode()
    assert privileges(target) == before
    # Without the forbidden group, the privilege fields are ignored; only the role is given.
    r = change(w["client"], target, is_superuser="on", is_staff="on", user_permissions=w["all_perms"],
               groups=[admin_group.pk])
    assert r.status_code == 302, r.content.decode()[:2000]
    superuser, staff, perms, groups = privileges(target)
    assert (superuser, perms, groups) == (False, set(), {"admin"})
    assert staff  # the admin role's entry to the admin site, as `users add --role admin` gives it


def test_taking_the_admin_role_away_takes_staff_status_too(admin_world):
    w = admin_world
    change(w["client"], w["vera"], groups=[Group.objects.get(name="admin").pk])
    assert privileges(w["vera"])[1] is True
    r = change(w["client"], w["vera"], groups=[Group.objects.get(name="operator").pk])
    assert r.status_code == 302
    assert privileges(w["vera"])[1:] == (False, set(), {"operator"})


def test_the_admin_role_cannot_touch_a_superuser_or_the_groups(admin_world):
    w = admin_world
    c, root = w["client"], w["root"]
    assert c.get(f"/admin/auth/user/{root.pk}/change/").status_code in (302, 403, 404)
    assert c.post(f"/admin/auth/user/{root.pk}/password/",
                  {"password1": "owned-it-1234", "password2": "owned-it-1234"}).status_code in (302, 403, 404)
    assert c.post(f"/admin/auth/user/{root.pk}/delete/", {"post": "yes"}).status_code in (302, 403, 404)
    root.refresh_from_db()
    assert root.check_password("root-password") and root.is_superuser
    assert "root" not in c.get("/admin/auth/user/").content.decode()
    admin_group = Group.objects.get(name="admin")
    before = set(admin_group.permissions.all())
    r = c.post(f"/admin/auth/group/{admin_group.pk}/change/", {"name": "admin", "permissions": w["all_perms"]})
    assert r.status_code == 403
    assert set(admin_group.permissions.all()) == before
    assert c.post("/admin/auth/group/add/", {"name": "mine", "permissions": w["all_perms"]}).status_code == 403
    assert not Group.objects.filter(name="mine").exists()


def test_the_admin_role_still_gives_roles_and_a_superuser_may_do_everything(admin_world):
    w = admin_world
    r = w["client"].post("/admin/auth/user/add/", {"username": "newbie", "password1": "a-long-pass-123",
                                                    "password2": "a-long-pass-123", "usable_password": "true"})
    assert r.status_code == 302, r.content.decode()[:3000]
    from django.contrib.auth.models import User

    newbie = User.objects.get(username="newbie")
    assert change(w["client"], newbie, groups=[Group.objects.get(name="operator").pk]).status_code == 302
    assert privileges(newbie) == (False, False, set(), {"operator"})
    su = Client()
    su.force_login(w["root"])
    r = change(su, newbie, is_superuser="on", is_staff="on", groups=[w["wheel"].pk],
               date_joined_0="2026-01-01", date_joined_1="00:00:00")
    assert r.status_code == 302, r.content.decode()[:3000]
    assert privileges(newbie)[:2] == (True, True)
