"""Static files as production serves them: ``collectstatic`` into the settings' manifest storage,
then whitenoise serving hashed names compressed with a far-future cache (the other tests use
Django's plain storage, see tests/conftest.py)."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from dashboard import settings as project

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    with override_settings(STORAGES=project.STORAGES, STATIC_ROOT=root, WHITENOISE_USE_FINDERS=False):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


@pytest.fixture
def production_static(collected, settings):
    settings.STORAGES = project.STORAGES
    settings.STATIC_ROOT = collected
    settings.WHITENOISE_USE_FINDERS = False
    settings.WHITENOISE_MAX_AGE = 3600  # Django resets its static storage on these changes
    return Client()  # a new client builds its middleware, so whitenoise reads this STATIC_ROOT


def hashed(root, name: str) -> str:
    return json.loads((root / "staticfiles.json").read_text())["paths"][name]


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_collectstatic_writes_hashed_and_compressed_files(collected):
    name = hashed(collected, "plotly/plotly-basic.min.js")
    assert re.fullmatch(r"plotly/plotly-basic\.min\.[0-9a-f]{12}\.js", name)
    original = (collected / name).read_bytes()
    compressed = (collected / (name + ".gz")).read_bytes()
    assert gzip.decompress(compressed) == original and len(compressed) < len(original) / 2


def test_pages_link_hashed_names(production_static, collected):
    page = production_static.get("/accounts/login/").content.decode()
    assert f'href="/static/{hashed(collected, "css/dashboard.css")}"' in page
    assert f'src="/static/{hashed(collected, "js/dashboard.js")}"' in page


def test_plotly_is_served_compressed_with_a_far_future_cache(production_static, collected):
    url = "/static/" + hashed(collected, "plotly/plotly-basic.min.js")
    r = production_static.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert r.status_code == 200 and r["Content-Encoding"] == "gzip"
    assert r["Cache-Control"] == "max-age=315360000, public, immutable"
    assert body(r) == (collected / (hashed(collected, "plotly/plotly-basic.min.js") + ".gz")).read_bytes()
    plain = production_static.get(url)  # a client that takes no gzip gets the file itself
    assert "Content-Encoding" not in plain and len(body(plain)) > 1_000_000


def test_a_plain_name_gets_whitenoise_max_age(production_static):
    r = production_static.get("/static/css/dashboard.css")
    assert r.status_code == 200 and r["Cache-Control"] == "max-age=3600, public"
