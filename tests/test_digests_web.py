"""The subscriptions page (per user, login required) and the unsubscribe link (no login, works once)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from failover.models import TransformationState
from reports.digests import sending
from reports.digests.models import DigestRecord, Subscription
from reports.digests.tokens import SALT, make_token
from tests.digests_support import SITE, make_user, seed_4848
from tests.factories import seed_policy

pytestmark = pytest.mark.django_db(databases="__all__")

GOOD = {
    "name": "Prod5b merging", "productions": "7", "transformation_types": "merging", "transformations": "",
    "frequency": "daily", "hour": "7", "weekday": "0", "want_reports": "on", "min_failed_share": "10",
    "want_actions": "on", "active": "on",
}


@pytest.fixture
def world():
    seed_policy()
    TransformationState.objects.create(transformation_id=4848, name="step3", type="Merging", status="Active",
                                       production_id=7)
    TransformationState.objects.create(transformation_id=4846, name="step1", type="DataReprocessing",
                                       status="Completed", production_id=7)


@pytest.fixture
def lucia(django_user_model):
    return make_user(django_user_model, "lucia", "lucia@example.org")


@pytest.fixture
def lucia_client(lucia) -> Client:
    client = Client()
    client.force_login(lucia)
    return client


@pytest.fixture
def stranger_sub(django_user_model):
    other = make_user(django_user_model, "otto", "otto@example.org")
    return Subscription.objects.create(user=other, name="Otto's")


# -- access -----------------------------------------------------------------------------------------


def test_it_asks_for_login(client):
    for path in ("/digests/", "/digests/add/", "/digests/1/", "/digests/1/delete/", "/digests/preview/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path


def test_it_refuses_an_account_without_a_role(django_user_model):
    client = Client()
    client.force_login(make_user(django_user_model, "nina", "nina@example.org", role=None))
    assert client.get("/digests/").status_code == 403


def test_it_hides_other_users_subscriptions(lucia_client, stranger_sub):
    assert lucia_client.get(f"/digests/{stranger_sub.pk}/").status_code == 404
    assert lucia_client.post(f"/digests/{stranger_sub.pk}/", GOOD).status_code == 404
    assert lucia_client.post(f"/digests/{stranger_sub.pk}/delete/").status_code == 404
    assert Subscription.objects.filter(pk=stranger_sub.pk).exists()
    assert "Otto" not in lucia_client.get("/digests/").content.decode()


def test_it_refuses_other_methods(lucia_client, lucia):
    sub = Subscription.objects.create(user=lucia)
    assert lucia_client.put(f"/digests/{sub.pk}/").status_code == 405
    assert lucia_client.delete(f"/digests/{sub.pk}/delete/").status_code == 405


# -- list, add, edit, delete ---------------------------------------------------------------------------


def test_it_adds_edits_and_deletes_a_subscription(lucia_client, lucia, world):
    page = lucia_client.get("/digests/").content.decode()
    assert "You have no subscription" in page and "lucia@example.org" in page
    form = lucia_client.get("/digests/add/").content.decode()
    assert "Known types: ApplyModel, DataReprocessing, Merging, Training." in form

    response = lucia_client.post("/digests/add/", GOOD, follow=True)
    assert response.redirect_chain == [("/digests/", 302)]
    sub = Subscription.objects.get(user=lucia)
    assert (sub.productions, sub.transformation_types, sub.frequency, sub.hour) == ([7], ["Merging"], "daily", 7)
    assert (sub.want_reports, sub.min_failed_share, sub.want_actions, sub.want_attention) == (True, 10.0, True, False)
    page = response.content.decode()
    assert "Subscription “Prod5b merging” added: daily at 07:00 UTC." in page
    assert "production 7 and type Merging" in page and "reports with at least 10% failed jobs" in page

    edit = lucia_client.get(f"/digests/{sub.pk}/").content.decode()
    assert 'value="7"' in edit and 'value="Merging"' in edit
    changed = {**GOOD, "frequency": "weekly", "weekday": "4", "hour": "16", "transformations": "4848",
               "productions": "", "transformation_types": ""}
    assert lucia_client.post(f"/digests/{sub.pk}/", changed).status_code == 302
    sub.refresh_from_db()
    assert (sub.frequency, sub.weekday, sub.hour, sub.transformations, sub.productions) == ("weekly", 4, 16, [4848], [])
    assert "Fridays at 16:00 UTC" in lucia_client.get("/digests/").content.decode()

    assert "Delete “Prod5b merging”?" in lucia_client.get(f"/digests/{sub.pk}/delete/").content.decode()
    response = lucia_client.post(f"/digests/{sub.pk}/delete/", follow=True)
    assert "Subscription “Prod5b merging” deleted." in response.content.decode()
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"productions": "7, abc"}, "Not a production number: abc. Give whole numbers separated by commas"),
        ({"productions": "99"}, "Unknown production: 99. No failover cycle has seen a step of it"),
        ({"transformations": "-3"}, "Not a transformation number: -3."),
        ({"transformations": "4848, 5000"}, "Unknown transformation: 5000."),
        ({"transformation_types": "Mergin"},
         "Unknown transformation type: Mergin. Known types: ApplyModel, DataReprocessing, Merging, Training."),
        ({"min_failed_share": "150"}, "The failed share is a percentage: 0 to 100."),
        ({"min_failed_share": "-1"}, "The failed share is a percentage: 0 to 100."),
        ({"min_failed_share": "lots"}, "The failed share is a percentage: a number from 0 to 100."),
        ({"min_failed_share": ""}, "Give the failed share from which a report is sent"),
        ({"hour": "24"}, "Select a valid choice. 24 is not one of the available choices."),
        ({"frequency": "hourly"}, "Select a valid choice. hourly is not one of the available choices."),
        ({"weekday": "9"}, "Select a valid choice. 9 is not one of the available choices."),
        ({"want_reports": "", "want_actions": ""}, "Choose at least one thing to receive"),
        ({"name": "x" * 101}, "Ensure this value has at most 100 characters"),
    ],
)
def test_the_form_refuses_bad_input_with_a_message(lucia_client, world, change, message):
    response = lucia_client.post("/digests/add/", {**GOOD, **change})
    assert response.status_code == 200
    page = response.content.decode().replace("&#x27;", "'")
    assert "Please correct the following" in page
    assert message in page, page[page.find("form-errors"):][:800]
    assert not Subscription.objects.exists()


def test_the_form_refuses_an_account_without_an_address(django_user_model, world):
    client = Client()
    client.force_login(make_user(django_user_model, "noe", ""))
    page = client.get("/digests/").content.decode()
    assert "Your account has no e-mail address" in page
    response = client.post("/digests/add/", GOOD)
    assert "Your account has no e-mail address, so no digest can reach you" in response.content.decode()
    assert not Subscription.objects.exists()


def test_the_page_says_when_mail_is_not_configured(lucia_client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = ""
    assert "E-mail is not configured on this server" in lucia_client.get("/digests/").content.decode()


def test_the_preview_page_shows_the_html_part(lucia_client, lucia, smtp):
    seed_policy()
    Subscription.objects.create(user=lucia, frequency="cycle", created=timezone.now() - timedelta(hours=1))
    seed_4848()
    page = lucia_client.get("/digests/preview/").content.decode()
    assert page.startswith("<!DOCTYPE html>") and "1916 (85.4%)" in page
    assert not DigestRecord.objects.exists()  # a preview records nothing


# -- unsubscribe -------------------------------------------------------------------------------------


def test_the_unsubscribe_link_works_once_without_login(lucia, smtp):
    seed_policy()
    sub = Subscription.objects.create(user=lucia, name="Prod5b", frequency="cycle",
                                      created=timezone.now() - timedelta(hours=1))
    seed_4848()
    [record] = sending.plan()
    path = record.unsubscribe_url.removeprefix(SITE)
    anon = Client()
    confirm = anon.get(path)
    assert confirm.status_code == 200 and "Unsubscribe?" in confirm.content.decode()
    assert "lucia@example.org" in confirm.content.decode()
    assert Subscription.objects.get(pk=sub.pk).active  # a GET (a mail scanner's prefetch) changes nothing

    done = anon.post(path)
    assert done.status_code == 200 and "You are unsubscribed" in done.content.decode()
    sub.refresh_from_db()
    assert not sub.active

    again = anon.post(path)
    assert again.status_code == 410 and "This link was already used" in again.content.decode()
    assert anon.get(path).status_code == 410
    # Turned back on from the page, the old link still does not work: it was used.
    Subscription.objects.filter(pk=sub.pk).update(active=True)
    assert anon.post(path).status_code == 410
    assert Subscription.objects.get(pk=sub.pk).active


def test_a_one_click_unsubscribe_from_a_mail_client(lucia):
    sub = Subscription.objects.create(user=lucia)
    response = Client(enforce_csrf_checks=True).post(
        f"/digests/unsubscribe/{make_token([sub])}/", {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    assert not Subscription.objects.get(pk=sub.pk).active


def test_a_tampered_or_forged_link_is_refused(lucia, stranger_sub):
    sub = Subscription.objects.create(user=lucia)
    token = make_token([sub])
    anon = Client()
    # One character changed in the signature, and in the payload.
    sig_flip = token[:-1] + ("A" if token[-1] != "A" else "B")
    payload_flip = ("X" if token[0] != "X" else "Y") + token[1:]
    # The other user's subscription id with this subscription's nonce, signed with another key.
    forged = signing.dumps([[stranger_sub.pk, stranger_sub.token_nonce]], salt=SALT, key="not-our-secret")
    other_salt = signing.dumps([[stranger_sub.pk, stranger_sub.token_nonce]], salt="something-else")
    for bad in (sig_flip, payload_flip, forged, other_salt, "garbage", signing.dumps("x", salt=SALT)):
        for method in (anon.get, anon.post):
            response = method(f"/digests/unsubscribe/{bad}/")
            assert response.status_code == 400, bad
            assert "This link is not valid" in response.content.decode()
    # A validly signed token with a stale nonce (an old mail) does nothing either.
    stale = signing.dumps([[stranger_sub.pk, "0" * 16]], salt=SALT, compress=True)
    assert anon.post(f"/digests/unsubscribe/{stale}/").status_code == 410
    assert Subscription.objects.filter(active=True).count() == 2


def test_one_link_unsubscribes_every_subscription_of_its_digest(lucia):
    a = Subscription.objects.create(user=lucia, name="a")
    b = Subscription.objects.create(user=lucia, name="b")
    keep = Subscription.objects.create(user=lucia, name="keep")
    response = Client().post(f"/digests/unsubscribe/{make_token([a, b])}/")
    assert response.status_code == 200
    assert list(Subscription.objects.filter(active=True)) == [keep]
