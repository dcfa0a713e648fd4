"""Hostile ids and numbers on every URL the product has, as every role: never a 500.

The walk reads the URL resolver itself (so a new page is walked without editing this file),
fills each path variable and every query or form parameter any view reads with values that
once gave 500s ("²" passes ``str.isdigit()`` but not ``int()``; a 23-digit number overflows
SQLite's INTEGER) and more: other Unicode digits, negatives, empty, signs, spaces, NUL.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

import pytest
from django.contrib.admindocs.views import extract_views_from_urlpatterns, simplify_regex
from django.test import Client
from django.urls import get_resolver, reverse

from dashboard.ids import BIGINT_MAX, INT_MAX, BadNumber, parse_id
from failover.models import ActionLog
from reports.digests.models import Subscription
from tests.factories import make_user

pytestmark = pytest.mark.django_db(databases="__all__")

HOSTILE = [
    "²",  # SUPERSCRIPT TWO: isdigit() is true, int() fails
    "١٢",  # ARABIC-INDIC digits: int() accepts them, silently
    "99999999999999999999999",  # beyond SQLite's 64-bit INTEGER
    str(INT_MAX + 1),  # beyond PostgreSQL's integer
    "-1",
    "",
    "abc",
    "4847,²",
    "\x00",
    "9" * 400,
]
# More, for the parser itself (test_the_parser_refuses_everything_else_with_a_message) and the
# app's own pages (not the admin's): the walk over every URL takes the list above.
MORE = ["𝟗", str(BIGINT_MAX + 1), "0", "1e3", "+7", " 7 "]

# Every parameter a view or form of the product reads (grep request.GET / POST and the forms).
PARAMS = ["t", "q", "production", "transformation", "cycle", "page", "page_size", "code", "kind", "state",
          "actor", "since", "until", "source", "sort", "type", "status", "attention", "proposals", "decision",
          "reason", "request_key", "productions", "transformations", "transformation_types", "hour", "weekday",
          "min_failed_share", "frequency", "name", "want_reports", "workers", "site", "minor_status",
          "application_status", "username", "password"]

# Path variables with a fixed vocabulary get a good value too, so the walk gets past them.
GOOD = {"kind": ["sync", "reassign"], "fmt": ["csv", "json"], "app_label": ["auth", "failover"],
        "tid": ["4847"], "pid": ["7"]}

ROLES = ["anonymous", "viewer", "operator", "admin"]


def url_patterns() -> list[str]:
    """Every URL of the resolver, as '/path/<var>/' strings (admin included)."""
    out = set()
    for _view, regex, _namespace, _name in extract_views_from_urlpatterns(get_resolver().url_patterns):
        out.add(re.sub(r"<\w+:(\w+)>", r"<\1>", simplify_regex(regex)).replace("\\.", "."))
    return sorted(out)


def fill(pattern: str, value: str) -> list[str]:
    """``pattern`` with each variable set to ``value`` (URL-quoted), and to its good values."""
    names = re.findall(r"<(\w+)>", pattern)
    if not names:
        return [pattern]
    urls = []
    for name in names:
        for v in [value] + GOOD.get(name, []):
            url = pattern
            for other in names:
                url = url.replace(f"<{other}>", quote(v if other == name else (GOOD.get(other) or [value])[0], safe=""))
            urls.append(url)
    return urls


@pytest.fixture
def clients(chain_proposed, django_user_model):
    made = {"anonymous": Client()}
    for role in ROLES[1:]:
        user = make_user(django_user_model, f"walk-{role}", role)
        user.email = f"{role}@example.org"
        user.is_staff = role == "admin"
        user.save()
        Subscription.objects.create(user=user, name=f"{role}'s")
        client = Client()
        client.force_login(user)
        made[role] = (client, user)
    return made


def test_the_walk_covers_the_product():
    patterns = url_patterns()
    for expected in ("/", "/transformations/<tid>/", "/actions/<kind>/", "/proposals/decide/", "/api/attention/",
                     "/digests/<pk>/", "/admin/auth/user/<object_id>/change/"):
        assert expected in patterns, (expected, patterns)
    assert len(patterns) > 60  # the admin's too


def walk() -> list[tuple[str, str, dict]]:
    """(method, url, data) of the walk, each once."""
    seen, out = set(), []
    for pattern in url_patterns():
        if "logout" in pattern:
            continue  # walked separately: it would end the session of the walk
        for value in HOSTILE + ([] if pattern.startswith("/admin/") else MORE):
            # All parameters at once; for "²", each alone too (a view that
            # stops at the first bad parameter must not hide another).
            variants = [{p: value for p in PARAMS}]
            if value == "²" and "/admin/" not in pattern:
                variants += [{p: value} for p in PARAMS]
            for url in fill(pattern, value):
                for data in variants:
                    if url == "/health/":
                        data = {**data, "workers": "0"}  # a string compared with "0"; pinging workers takes seconds
                    for method in ("get", "post"):
                        key = (method, url, tuple(sorted(data.items())))
                        if key not in seen:
                            seen.add(key)
                            out.append((method, url, data))
    return out


def crashed(response, url: str) -> bool:
    # /health/ answers 503 on purpose when a part of the system is down (no worker in the tests).
    return response.status_code == 500 or (response.status_code > 500 and url != "/health/")


@pytest.mark.parametrize("role", ROLES)
def test_no_hostile_id_or_number_gives_a_500(clients, role):
    logging.getLogger("django.request").setLevel(logging.CRITICAL)  # 10 000 lines of 404s and 405s otherwise
    entry = clients[role]
    client = entry if role == "anonymous" else entry[0]
    client.raise_request_exception = False  # a crash is a 500 here, so the walk goes on and lists them all
    failures = []
    requests = walk()
    for method, url, data in requests:
        response = getattr(client, method)(url, data)
        if crashed(response, url):
            shown = "every parameter" if len(data) > 2 else data
            failures.append(f"{method.upper()} {url} {shown}={data.get('t')!r}: {response.status_code}")
    logging.getLogger("django.request").setLevel(logging.NOTSET)
    assert len(requests) > 1000
    assert not failures, f"{len(failures)} of {len(requests)} requests gave a 500:\n" + "\n".join(failures[:40])


@pytest.mark.parametrize("url", ["/?q=%C2%B2", "/actions/sync/?t=99999999999999999999999", "/actions/sync/?t=%C2%B2",
                                 "/proposals/?t=%C2%B2", "/proposals/?t=99999999999999999999999",
                                 "/api/transformations/?production=%C2%B2", "/api/attention/?transformation=%C2%B2",
                                 "/api/attention/?transformation=99999999999999999999999",
                                 "/api/transformations/?page=%C2%B2"])
def test_the_reported_urls_answer_with_a_message(clients, url):
    client, _ = clients["operator"]
    response = client.get(url)
    assert response.status_code in (200, 400, 404), response.status_code
    if url.startswith("/?q"):
        assert response.status_code == 200  # a search by name that finds nothing
    else:
        assert response.status_code == 400
        body = response.content.decode()
        assert "whole number" in body or "too large" in body


def test_the_decision_and_the_actions_refuse_huge_numbers_with_a_message(clients):
    client, _ = clients["operator"]
    r = client.post(reverse("proposals_decide"), {"decision": "approve", "proposals": ["99999999999999999999999"]})
    assert r.status_code == 400 and "too large for a proposal number" in r.content.decode()
    r = client.post(reverse("proposals_decide"), {"decision": "approve", "proposals": ["²"]})
    assert r.status_code == 400 and "digits 0-9" in r.content.decode()
    assert ActionLog.objects.filter(state=ActionLog.State.PROPOSED).count() == 2  # nothing decided
    r = client.post(reverse("action", args=["sync"]), {"t": "99999999999999999999999", "request_key": "a" * 32})
    assert r.status_code == 400 and "too large for a transformation id" in r.content.decode()


def test_the_subscription_form_refuses_hostile_numbers(clients):
    client, user = clients["viewer"]
    for value, message in [("²", "Not a production number: ²"), ("99999999999999999999999", "Not a production number"),
                           ("0", "Not a production number: 0"), ("-7", "Not a production number: -7")]:
        r = client.post(reverse("digests:add"), {"name": "x", "productions": value, "frequency": "daily", "hour": "7",
                                                 "want_actions": "on"})
        assert r.status_code in (200, 400), r.status_code
        assert message in r.content.decode(), value
    assert Subscription.objects.filter(user=user).count() == 1


def test_logout_with_hostile_input_is_not_a_500(clients):
    for role in ROLES[1:]:
        client, _ = clients[role]
        for value in HOSTILE:
            assert client.post("/accounts/logout/", {p: value for p in PARAMS}).status_code < 500


@pytest.mark.parametrize("raw, expected", [("7", 7), (" 42 ", 42), ("0", 0), (str(INT_MAX), INT_MAX)])
def test_the_parser_takes_ascii_digits(raw, expected):
    assert parse_id(raw) == expected


@pytest.mark.parametrize("raw", ["²", "١٢", "𝟗", "-1", "+1", "1.0", "1e3", "", None, "0x10", str(INT_MAX + 1),
                                 "9" * 5000,
                                 str(BIGINT_MAX + 1), "4847,²", "\x00", "7 8"])
def test_the_parser_refuses_everything_else_with_a_message(raw):
    with pytest.raises(BadNumber) as info:
        parse_id(raw, what="transformation id")
    assert "transformation id" in str(info.value) or "whole number" in str(info.value)
    assert len(str(info.value)) < 200  # a long input is not echoed in full
