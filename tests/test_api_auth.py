"""The API on Django REST framework: tokens (``users token NAME``), Basic as an option, throttling,
the generated OpenAPI document and its viewers served from our static files."""

from __future__ import annotations

import base64
import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from dashboard.models import ApiToken
from tests.factories import make_user

pytestmark = pytest.mark.django_db(databases="__all__")

URL = "/api/transformations/"


def token_for(name: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("users", "token", name, stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert re.fullmatch(r"[0-9a-f]{40}", key), key
    assert "shown once" in err.getvalue()
    return key


def with_token(key: str, url: str = URL, **extra):
    return Client().get(url, HTTP_AUTHORIZATION=f"Token {key}", **extra)


def test_a_token_authenticates_a_script_with_its_accounts_role(django_user_model, chain_synced):
    make_user(django_user_model, "script", "viewer")
    key = token_for("script")
    r = with_token(key)
    assert r.status_code == 200 and r.json()["count"] == 3
    assert with_token(key, "/api/transformations/4847/").json()["id"] == 4847
    # Only the key's digest is stored: the database holds no usable credential.
    stored = ApiToken.objects.get(user__username="script")
    assert stored.digest == ApiToken.digest_of(key) and key not in stored.digest


def test_rotating_a_token_stops_the_old_one_and_revoking_stops_all(django_user_model, chain_synced):
    make_user(django_user_model, "script", "operator")
    old = token_for("script")
    new = token_for("script")
    assert old != new
    r = with_token(old)
    assert r.status_code == 401 and "unknown token" in r.json()["error"]
    assert with_token(new).status_code == 200
    out = io.StringIO()
    call_command("users", "token", "script", "--revoke", stdout=out)
    assert "Removed" in out.getvalue() and with_token(new).status_code == 401


def test_the_token_command_refuses_unknown_roleless_and_disabled_accounts(django_user_model):
    with pytest.raises(CommandError, match="no account 'ghost'"):
        call_command("users", "token", "ghost")
    make_user(django_user_model, "nobody", None)
    with pytest.raises(CommandError, match="has no role"):
        call_command("users", "token", "nobody")
    user = make_user(django_user_model, "gone", "viewer")
    user.is_active = False
    user.save()
    with pytest.raises(CommandError, match="disabled"):
        call_command("users", "token", "gone")


def test_a_disabled_accounts_token_and_a_wrong_token_are_refused(django_user_model, chain_synced):
    user = make_user(django_user_model, "script", "viewer")
    key = token_for("script")
    user.is_active = False
    user.save()
    assert with_token(key).status_code == 401
    r = with_token("0" * 40)
    assert r.status_code == 401 and list(r.json()) == ["error"]


def test_a_token_of_an_account_that_lost_its_role_gets_403(django_user_model, chain_synced):
    user = make_user(django_user_model, "script", "viewer")
    key = token_for("script")
    user.groups.clear()
    r = with_token(key)
    assert r.status_code == 403 and r.json() == {"error": "your account has no role: ask an administrator"}


def test_without_basic_a_password_is_not_enough(django_user_model, chain_synced, settings, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user(django_user_model, "script", "viewer")
    user.set_password("pw-for-scripts")
    user.save()
    basic = "Basic " + base64.b64encode(b"script:pw-for-scripts").decode()
    assert Client().get(URL, HTTP_AUTHORIZATION=basic).status_code == 200
    from dashboard import api, api_access

    # What API_BASIC_AUTH=false gives every view (the classes are read once, at start-up).
    monkeypatch.setattr(api.Transformations, "authentication_classes",
                        [api_access.TokenAuthentication, api_access.SessionAuthentication])
    r = Client().get(URL, HTTP_AUTHORIZATION=basic)
    assert r.status_code == 401 and r["WWW-Authenticate"] == "Token"
    assert with_token(token_for("script")).status_code == 200


def test_the_setting_api_basic_auth_chooses_the_classes(monkeypatch):
    import importlib

    from dashboard import settings as module

    monkeypatch.setenv("API_BASIC_AUTH", "false")
    try:
        assert "dashboard.api_access.BasicAuthentication" not in importlib.reload(module).REST_FRAMEWORK[
            "DEFAULT_AUTHENTICATION_CLASSES"]
    finally:
        monkeypatch.delenv("API_BASIC_AUTH")
        assert "dashboard.api_access.BasicAuthentication" in importlib.reload(module).REST_FRAMEWORK[
            "DEFAULT_AUTHENTICATION_CLASSES"]


@pytest.mark.parametrize("value", ["10", "ten/min", "0/min", "5/fortnight", "-1/s"])
def test_a_bad_throttle_rate_stops_start_up_naming_the_variable(monkeypatch, value):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    from dashboard import settings as module

    monkeypatch.setenv("API_THROTTLE_USER", value)
    try:
        with pytest.raises(ImproperlyConfigured, match="API_THROTTLE_USER=.* is not a rate"):
            importlib.reload(module)
    finally:
        monkeypatch.delenv("API_THROTTLE_USER")
        importlib.reload(module)


def test_an_account_is_throttled_at_its_rate_with_retry_after(django_user_model, chain_synced, settings):
    settings.API_THROTTLE_USER = "3/min"
    make_user(django_user_model, "script", "viewer")
    key = token_for("script")
    assert [with_token(key).status_code for _ in range(3)] == [200, 200, 200]
    r = with_token(key)
    assert r.status_code == 429 and r.json()["error"].startswith("too many requests: try again in ")
    assert 1 <= int(r["Retry-After"]) <= 60
    # Another account has its own count.
    make_user(django_user_model, "other", "viewer")
    assert with_token(token_for("other")).status_code == 200


def test_requests_without_an_account_are_throttled_per_address(settings):
    settings.API_THROTTLE_ANON = "2/min"
    here, there = Client(REMOTE_ADDR="192.0.2.1"), Client(REMOTE_ADDR="192.0.2.2")
    assert [here.get(URL).status_code for _ in range(2)] == [401, 401]
    assert here.get(URL).status_code == 429
    assert there.get(URL).status_code == 401


def test_throttling_can_be_off(django_user_model, chain_synced, settings):
    settings.API_THROTTLE_USER = None
    make_user(django_user_model, "script", "viewer")
    key = token_for("script")
    assert {with_token(key).status_code for _ in range(30)} == {200}


def test_the_openapi_document_is_generated_from_the_code(viewer_client):
    spec = viewer_client.get(reverse("api_openapi")).json()
    assert spec["openapi"] == "3.1.0" and spec["info"]["title"] == "Failover Dashboard API"
    assert set(spec["components"]["securitySchemes"]) == {"basic", "tokenAuth", "session"}
    assert {p["name"] for p in spec["paths"]["/api/actions/"]["get"]["parameters"]} == {
        "transformation", "kind", "state", "actor", "since", "until", "page", "page_size"}
    fields = spec["components"]["schemas"]["Transformation"]["properties"]
    from tests.test_api_contract import ACTION, TRANSFORMATION

    assert list(fields) == TRANSFORMATION
    assert list(spec["components"]["schemas"]["Action"]["properties"]) == ACTION
    csv = spec["paths"]["/api/transformations/{tid}/report.csv"]["get"]["responses"]["200"]["content"]
    assert list(csv) == ["text/csv"]
    from pathlib import Path

    assert not (Path(__file__).parents[1] / "dashboard" / "openapi.json").exists()  # no hand-written copy


def test_the_api_viewer_loads_its_assets_from_our_static_files(viewer_client):
    r = viewer_client.get(reverse("api_docs"))
    assert r.status_code == 200
    html = r.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert not re.search(r"https?://", html.replace("http://www.w3.org", "")), "no outside address on the page"
    static = [s for s in sources if s.startswith("/static/")]
    assert static and all(viewer_client.get(s).status_code == 200 for s in static), static
    assert any("/drf_spectacular_sidecar/swagger-ui-dist/" in s for s in static)
    # And the browser is told to load nothing from anywhere else.
    assert "default-src 'self'" in r["Content-Security-Policy"]


def test_the_api_viewer_wants_a_signed_in_account_with_a_role(anon_client, norole_client):
    r = anon_client.get(reverse("api_docs"))
    assert r.status_code == 302 and r["Location"].startswith(reverse("login"))
    assert norole_client.get(reverse("api_docs")).status_code == 403
