"""Digests through a real SMTP server (aiosmtpd on 127.0.0.1): what arrives, once, and retries.

The seed's figure for transformation 4848 is stored as aggregates with SqlAggregateStore.write;
the mail's table must show it number for number, in both parts.
"""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from failover import attention, blockers
from failover.blockers import Blocker
from failover.models import ActionLog, Cycle, TransformationState
from reports.aggregation import aggregate_jobs, build_report, render_text
from reports.digests import sending
from reports.digests.health import check_mail
from reports.digests.models import DigestRecord, Subscription
from reports.digests.tasks import send_digest, send_due
from tests.digests_support import MOVED, SITE, make_user, parse_html, report_table, seed_4848
from tests.factories import seed_policy
from tests.test_report import SEED_TABLE, seed_jobs

pytestmark = pytest.mark.django_db(databases="__all__")

GREEN, RED = "#2e8540", "#c0392b"


@pytest.fixture
def lucia(django_user_model):
    return make_user(django_user_model, "lucia", "lucia@example.org")


@pytest.fixture
def subscribed(lucia):
    seed_policy()
    return Subscription.objects.create(
        user=lucia, name="Prod5b merging", frequency=Subscription.Frequency.CYCLE, productions=[7],
        min_failed_share=10, created=timezone.now() - timedelta(hours=1),
    )


def run_beat(capture) -> str:
    """What beat's minute does: the send_due task, its on-commit enqueues run (eagerly)."""
    with capture(execute=True):
        return send_due()


def parts(message) -> tuple[str, str]:
    def body(kind: str) -> str:
        return message.get_body((kind,)).get_content().replace("\r\n", "\n")

    return body("plain"), body("html")


# -- what arrives --------------------------------------------------------------------------------


def test_it_sends_the_seed_report_of_4848_with_both_parts_and_links(
    smtp, eager, subscribed, django_capture_on_commit_callbacks, client
):
    seeded = seed_4848()
    assert run_beat(django_capture_on_commit_callbacks) == "1 digest queued"

    assert len(smtp.inbox.messages) == 1
    envelope, message = smtp.inbox.envelopes[0], smtp.inbox.messages[0]
    assert envelope.mail_from == "failover@example.org" and envelope.rcpt_tos == ["lucia@example.org"]
    assert message["Subject"] == f"[Failover] After cycle {seeded.cycle.pk}: 2 actions, 1 report"
    assert message["To"] == "lucia@example.org"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)

    # The text part holds the agent's table, exactly as `manage.py report` prints it.
    seed_text = render_text(build_report(4848, aggregate_jobs(seed_jobs())))
    assert seed_text in text
    for number in ("1875 (97.9%)", "41 (2.1%)", "1916 (85.4%)", "1 (0.3%)", "325 (99.1%)", "2 (0.6%)",
                   "328 (14.6%)", "2244"):
        assert number in text and number in html

    # The HTML part: the same rows in the same order, green Done, red Failed, subtotals in bold.
    table = report_table(html)
    assert [tuple(c[0] for c in row) for row in table] == SEED_TABLE
    by_first = {row[0][0]: row for row in table}
    assert GREEN in by_first["Total: Done"][4][1] and "font-weight:700" in by_first["Total: Done"][4][1]
    assert RED in by_first["Total: Failed"][4][1] and "font-weight:700" in by_first["Total: Failed"][4][1]
    assert all(GREEN in row[0][1] for row in table[1:10])
    assert all(RED in row[0][1] for row in table[10:19])
    minor_done = table[5]
    assert minor_done[1][0] == "Total: Execution Complete" and "font-weight:700" in minor_done[1][1]

    # Mail clients: inline styles only, no script, no stylesheet, no external resource.
    doc = parse_html(html)
    assert not doc.tags & {"script", "style", "link", "iframe", "form", "img"}
    assert "<script" not in html.lower() and "javascript:" not in html.lower()

    # The reassigned LFNs (task, LFN) and the actions, in both parts.
    for lfn in MOVED:
        assert lfn in text and lfn in html
    assert "Reassigned 2 LFNs on transformation 4848" in text and "Reassigned 2 LFNs on transformation 4848" in html
    assert "Flush (done, by system): status Active -> Flush" in text

    # The top failure signatures under the report, normalised, with their sites, in both parts.
    assert ("* 325 jobs: Maximum of reschedulings reached | Failed Input Data Resolution "
            "(at LCG.GRIF.fr, LCG.IN2P3-CC.fr, LCG.LANCASTER.uk)") in text
    assert ("* 1 job: Application Finished With Errors | Operation not permitted ( N : cta-prod-setup-software "
            "Exited With Status N) (at LCG.LANCASTER.uk)") in text
    assert "Top failure signatures" in html and "Received Kill signal | Executing Step1_ctapipe_process" in html

    # The summary comes first.
    assert text.index("SUMMARY") < text.index("TRANSFORMATION 4847") < text.index("Transformation: 4848")
    assert "2 actions taken (1 flush, 1 reassignment); 2 files set back to Unused" in text

    # Links to the pages, on SITE_URL, in both parts.
    report_link = f"{SITE}/transformations/4848/?cycle={seeded.cycle.pk}"
    for link in (report_link, f"{SITE}/transformations/4847/", f"{SITE}/productions/7/",
                 f"{SITE}/audit/{seeded.reassign.pk}/", f"{SITE}/digests/"):
        assert link in html, link
    for link in (report_link, f"{SITE}/audit/{seeded.flush.pk}/", f"{SITE}/digests/"):
        assert link in text, link
    unsubscribe = re.search(r"Unsubscribe from this digest: (\S+)", text).group(1)
    assert unsubscribe.startswith(f"{SITE}/digests/unsubscribe/")
    assert unsubscribe in doc.links
    assert message["List-Unsubscribe"].strip() == f"<{unsubscribe}>"  # folded: a long header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # The links answer: the report page (for a signed-in viewer) and the unsubscribe link (for anyone).
    client.force_login(subscribed.user)
    assert client.get(urlsplit(report_link).path, {"cycle": seeded.cycle.pk}).status_code == 200
    client.logout()
    assert client.get(urlsplit(unsubscribe).path).status_code == 200

    record = DigestRecord.objects.get()
    assert (record.state, record.attempts, record.period) == ("sent", 1, f"cycle:{seeded.cycle.pk}")
    assert check_mail().ok


def test_a_second_run_sends_nothing_new(smtp, eager, subscribed, django_capture_on_commit_callbacks, time_machine):
    seed_4848()
    run_beat(django_capture_on_commit_callbacks)
    assert len(smtp.inbox.messages) == 1
    # The next minutes' beats, and the in-process command, find the period recorded.
    assert run_beat(django_capture_on_commit_callbacks) == "0 digests queued"
    time_machine.move_to(timezone.now() + timedelta(minutes=5))
    assert run_beat(django_capture_on_commit_callbacks) == "0 digests queued"
    call_command("digest", "send", stdout=StringIO())
    assert len(smtp.inbox.messages) == 1
    # Re-delivering the recorded digest (a redelivered task message) does not send it again.
    record = DigestRecord.objects.get()
    assert send_digest.apply(args=[record.pk]).get() == "already sent, being sent or gone"
    assert sending.deliver(record.pk) == "already sent, being sent or gone"
    assert len(smtp.inbox.messages) == 1
    assert DigestRecord.objects.count() == 1


def test_a_cycle_that_did_nothing_sends_nothing_and_the_next_says_what_changed(
    smtp, eager, subscribed, django_capture_on_commit_callbacks, time_machine
):
    seed_4848()
    run_beat(django_capture_on_commit_callbacks)
    time_machine.move_to(timezone.now() + timedelta(minutes=10))
    # A quiet cycle: no action, the same numbers.
    quiet = Cycle.objects.create(started=timezone.now() - timedelta(seconds=60), finished=timezone.now(),
                                 state="finished", trigger="beat")
    run_beat(django_capture_on_commit_callbacks)
    assert len(smtp.inbox.messages) == 1
    assert DigestRecord.objects.get(period=f"cycle:{quiet.pk}").state == "skipped"

    # Jobs moving on (4 more Done) is not news either.
    time_machine.move_to(timezone.now() + timedelta(minutes=10))
    moving = Cycle.objects.create(started=timezone.now() - timedelta(seconds=60), finished=timezone.now(),
                                  state="finished", trigger="beat")
    TransformationState.objects.filter(pk=4848).update(jobs={"Done": 1920, "Failed": 328}, jobs_total=2248)
    run_beat(django_capture_on_commit_callbacks)
    assert len(smtp.inbox.messages) == 1
    assert DigestRecord.objects.get(period=f"cycle:{moving.pk}").state == "skipped"

    # A cycle after which 12 more jobs failed: news, and the summary says what changed.
    time_machine.move_to(timezone.now() + timedelta(minutes=10))
    busy = Cycle.objects.create(started=timezone.now() - timedelta(seconds=60), finished=timezone.now(),
                                state="finished", trigger="beat")
    TransformationState.objects.filter(pk=4848).update(jobs={"Done": 1920, "Failed": 340}, jobs_failed=340,
                                                       jobs_total=2260, failed_share=15.0)
    run_beat(django_capture_on_commit_callbacks)
    assert len(smtp.inbox.messages) == 2
    text, html = parts(smtp.inbox.messages[1])
    assert smtp.inbox.messages[1]["Subject"] == f"[Failover] After cycle {busy.pk}: 1 report"
    assert "Since your last digest" in text
    assert "4848 step3: failed jobs 328 → 340 (+12)" in text and "failed jobs 328 → 340 (+12)" in html
    # The flush of the first cycle is not repeated; 4847 had no news, so it is left out.
    assert "TRANSFORMATION 4847" not in text and "Flush (done" not in text


def test_every_cycle_behaves_like_the_agent(smtp, eager, lucia, django_capture_on_commit_callbacks, time_machine):
    seed_policy()
    Subscription.objects.create(user=lucia, frequency=Subscription.Frequency.EVERY_CYCLE, min_failed_share=0,
                                transformation_types=["Merging"], created=timezone.now() - timedelta(hours=1))
    seed_4848()
    run_beat(django_capture_on_commit_callbacks)
    time_machine.move_to(timezone.now() + timedelta(minutes=10))
    Cycle.objects.create(started=timezone.now() - timedelta(seconds=60), finished=timezone.now(),
                         state="finished", trigger="beat")
    run_beat(django_capture_on_commit_callbacks)
    # Nothing changed, and still a mail with the report, as the agent sent every cycle.
    assert len(smtp.inbox.messages) == 2
    text, _ = parts(smtp.inbox.messages[1])
    assert "Total # tasks:" in text and "No report number, status, attention item or proposal changed." in text


# -- refusals and retries ------------------------------------------------------------------------


def test_a_server_that_refuses_then_accepts_gets_one_message(
    smtp, eager, subscribed, django_capture_on_commit_callbacks
):
    seed_4848()
    smtp.refuse("451 4.3.0 Mailbox busy, try again later", "554 5.7.1 Relay temporarily refused")
    run_beat(django_capture_on_commit_callbacks)
    assert smtp.inbox.attempts == 3
    assert len(smtp.inbox.messages) == 1
    record = DigestRecord.objects.get()
    assert (record.state, record.attempts) == ("sent", 3)
    assert "554" in record.last_error  # the last refusal is kept for the record
    assert check_mail().ok


def test_a_server_that_always_refuses_ends_failed_and_shows_on_health(
    smtp, eager, subscribed, django_capture_on_commit_callbacks, caplog
):
    seed_4848()
    smtp.refuse(*["554 5.7.1 Relay access denied"] * 20)
    run_beat(django_capture_on_commit_callbacks)
    record = DigestRecord.objects.get()
    assert record.state == "failed"
    assert record.attempts == send_digest.max_retries + 1
    assert smtp.inbox.attempts == send_digest.max_retries + 1 and not smtp.inbox.messages
    check = check_mail()
    assert not check.ok
    assert "1 digest failed after retries" in check.detail and "Relay access denied" in check.detail
    assert "failed after 7 attempts" in caplog.text
    # The next beat does not send the failed period again; mail flowing again clears the check.
    run_beat(django_capture_on_commit_callbacks)
    assert smtp.inbox.attempts == send_digest.max_retries + 1
    DigestRecord.objects.create(recipient=record.recipient, email=record.email, period="daily:x", kind="daily",
                                window_start=timezone.now(), window_end=timezone.now(), state="sent",
                                sent=timezone.now())
    assert check_mail().ok


def test_the_task_declares_backoff_and_a_cap():
    assert send_digest.autoretry_for and send_digest.max_retries == 6
    assert send_digest.retry_backoff and send_digest.retry_backoff_max == 1800


def test_a_dead_server_is_retried_too(settings, eager, subscribed, django_capture_on_commit_callbacks):
    from tests.digests_support import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    seed_4848()
    run_beat(django_capture_on_commit_callbacks)
    record = DigestRecord.objects.get()
    assert record.state == "failed" and "ConnectionRefusedError" in record.last_error


def test_a_worker_that_died_mid_send_is_not_sent_again_and_is_shown(smtp, subscribed, time_machine):
    seed_4848()
    [record] = sending.plan()
    DigestRecord.objects.filter(pk=record.pk).update(state="sending", claimed=timezone.now())
    time_machine.move_to(timezone.now() + timedelta(minutes=20))
    assert sending.deliver(record.pk) == "already sent, being sent or gone"
    assert not smtp.inbox.messages
    check = check_mail()
    assert not check.ok and "stuck while sending" in check.detail


def test_a_lost_task_message_is_handed_out_again(smtp, subscribed, time_machine):
    seed_4848()
    [record] = sending.plan()  # recorded, but no task ran
    handed = []
    assert sending.housekeeping(on_requeue=handed.append) == 0
    time_machine.move_to(timezone.now() + timedelta(minutes=11))
    assert sending.housekeeping(on_requeue=handed.append) == 1 and handed == [record.pk]
    assert sending.deliver(record.pk).startswith("sent")
    assert len(smtp.inbox.messages) == 1


def test_two_concurrent_planners_record_a_period_once(smtp, subscribed):
    seed_4848()
    due = sending.find_due(timezone.now())
    first = sending.plan()
    # A second planner that computed the same due list before the first recorded it.
    from unittest import mock

    with mock.patch.object(sending, "find_due", return_value=due):
        second = sending.plan()
    assert len(first) == 1 and second == []
    assert DigestRecord.objects.count() == 1


# -- without e-mail settings ------------------------------------------------------------------------


def test_without_email_host_nothing_is_sent_and_nothing_breaks(
    settings, eager, subscribed, django_capture_on_commit_callbacks, caplog
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = ""
    sending._warned_unconfigured = False
    seed_4848()
    assert run_beat(django_capture_on_commit_callbacks) == "mail is not configured: nothing sent"
    assert run_beat(django_capture_on_commit_callbacks) == "mail is not configured: nothing sent"
    assert not DigestRecord.objects.exists()
    assert caplog.text.count("EMAIL_HOST is not set") == 1  # said once, not every minute
    check = check_mail()
    assert check.ok and check.detail.startswith("not configured (EMAIL_HOST is empty)")
    assert "1 active subscription wait" in check.detail
    with pytest.raises(CommandError, match="EMAIL_HOST is not set"):
        call_command("digest", "send", "--now")
    # Preview still works, and says nothing would be sent.
    out, err = StringIO(), StringIO()
    call_command("digest", "preview", "lucia", stdout=out, stderr=err)
    assert "Total # tasks:" in out.getvalue() and "nothing would actually be sent" in err.getvalue()


# -- daily and weekly ------------------------------------------------------------------------------


def test_a_daily_digest_goes_once_at_its_hour_after_the_running_cycle(
    smtp, eager, lucia, django_capture_on_commit_callbacks, time_machine
):
    seed_policy()
    time_machine.move_to("2026-11-24 12:00:00Z", tick=False)
    Subscription.objects.create(user=lucia, frequency=Subscription.Frequency.DAILY, hour=7, min_failed_share=5)
    time_machine.move_to("2026-11-25 06:59:00Z", tick=False)
    seed_4848()
    assert run_beat(django_capture_on_commit_callbacks) == "0 digests queued"
    time_machine.move_to("2026-11-25 07:00:30Z", tick=False)
    # A cycle is running: its results are not all committed yet, so the digest waits for it.
    running = Cycle.objects.create(started=timezone.now() - timedelta(seconds=40), trigger="beat")
    assert run_beat(django_capture_on_commit_callbacks) == "0 digests queued"
    Cycle.objects.filter(pk=running.pk).update(state="finished", finished=timezone.now())
    time_machine.move_to("2026-11-25 07:01:30Z", tick=False)
    assert run_beat(django_capture_on_commit_callbacks) == "1 digest queued"
    time_machine.move_to("2026-11-25 18:00:00Z", tick=False)
    assert run_beat(django_capture_on_commit_callbacks) == "0 digests queued"
    assert [m["Subject"] for m in smtp.inbox.messages] == ["[Failover] Daily digest, 2026-11-25: 2 actions, 1 report"]
    assert DigestRecord.objects.get().period == "daily:2026-11-25T07"


def test_send_now_does_not_wait_for_the_hour_and_the_hour_then_sends_nothing(
    smtp, lucia, time_machine
):
    seed_policy()
    time_machine.move_to("2026-11-23 12:00:00Z", tick=False)
    Subscription.objects.create(user=lucia, frequency=Subscription.Frequency.WEEKLY, weekday=2, hour=9)
    time_machine.move_to("2026-11-24 10:00:00Z", tick=False)  # a Tuesday: the Wednesday digest is not due
    seed_4848()
    out = StringIO()
    call_command("digest", "send", stdout=out)
    assert "0 digests handled" in out.getvalue() and not smtp.inbox.messages
    call_command("digest", "send", "--now", stdout=out)
    assert "weekly:2026-11-25T09 to lucia@example.org: sent to lucia@example.org" in out.getvalue()
    time_machine.move_to("2026-11-25 09:05:00Z", tick=False)
    call_command("digest", "send", stdout=out)  # what beat does at the hour: already sent
    assert [m["Subject"] for m in smtp.inbox.messages] == [
        "[Failover] Weekly digest, week of 2026-11-25: 2 actions, 1 report"
    ]
    # --now once more: this week's is sent, so next week's goes early, once.
    call_command("digest", "send", "--now", stdout=out)
    call_command("digest", "send", "--now", stdout=out)
    time_machine.move_to("2026-12-02 09:05:00Z", tick=False)
    call_command("digest", "send", stdout=out)
    assert [r.period for r in DigestRecord.objects.order_by("id")] == ["weekly:2026-11-25T09", "weekly:2026-12-02T09"]
    assert len(smtp.inbox.messages) == 2


def test_a_user_without_a_role_or_address_gets_nothing(smtp, django_user_model, time_machine):
    seed_policy()
    earlier = timezone.now() - timedelta(hours=1)
    nobody = make_user(django_user_model, "nina", "nina@example.org", role=None)
    noaddress = make_user(django_user_model, "noe", "")
    for u in (nobody, noaddress):
        Subscription.objects.create(user=u, frequency="cycle", created=earlier)
    seed_4848()
    assert sending.plan() == []
    assert not DigestRecord.objects.exists()


# -- preview and the commands -----------------------------------------------------------------------


def test_preview_prints_what_would_be_sent_and_records_nothing(smtp, subscribed, tmp_path):
    seed_4848()
    out = StringIO()
    call_command("digest", "preview", "lucia", "--html-file", str(tmp_path / "d.html"), stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert text.startswith("To: lucia@example.org\nSubject: [Failover] After cycle")
    assert "1916 (85.4%)" in text and "Total # tasks:" in text
    assert "<table" in (tmp_path / "d.html").read_text()
    assert not DigestRecord.objects.exists() and not smtp.inbox.messages
    # By address too; an unknown user is a clear error.
    assert "To: lucia@example.org" in _out("digest", "preview", "LUCIA@example.org")
    with pytest.raises(CommandError, match="nobody has no active subscription"):
        call_command("digest", "preview", "nobody")


def _out(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_beat_schedule_has_the_digest_task():
    from dashboard.celery import app

    app.loader.import_default_modules()
    app.finalize()
    entry = app.conf.beat_schedule["digests"]
    assert entry["task"] == "digests.send_due" and entry["options"]["expires"] == 60.0


# -- a policy's MailTo -------------------------------------------------------------------------


def test_mailto_becomes_subscriptions_with_the_agents_behaviour(django_user_model, smtp, eager,
                                                               django_capture_on_commit_callbacks):
    lucia = make_user(django_user_model, "lucia", "Arrabito@in2p3.fr")
    policy = seed_policy(mail_to=["natthan.pigoux@cta-consortium.org", "arrabito@in2p3.fr", "not an address"])
    subs = {s.address.lower(): s for s in Subscription.objects.select_related("user")}
    assert set(subs) == {"natthan.pigoux@cta-consortium.org", "arrabito@in2p3.fr"}
    mine, theirs = subs["arrabito@in2p3.fr"], subs["natthan.pigoux@cta-consortium.org"]
    assert mine.user == lucia and mine.email == ""
    assert theirs.user is None and theirs.email == "natthan.pigoux@cta-consortium.org"
    for s in (mine, theirs):
        assert s.frequency == "every_cycle" and s.min_failed_share == 0
        assert s.transformation_types == ["DataReprocessing", "Merging"]  # the policy's Report
        assert s.want_reports and s.want_actions and not s.want_attention
        assert s.source == f"MailTo of policy default (id {policy.pk})"
    # Saving the policy again imports nothing twice; an unsubscribed address stays unsubscribed.
    Subscription.objects.filter(pk=theirs.pk).update(active=False)
    policy.polling_time = 300
    policy.save()
    assert Subscription.objects.count() == 2 and not Subscription.objects.get(pk=theirs.pk).active
    # The address-only one is mailed after the next cycle like the agent did, with the 4848 figure.
    Subscription.objects.filter(pk=theirs.pk).update(active=True, created=timezone.now() - timedelta(hours=1))
    Subscription.objects.filter(pk=mine.pk).update(active=False)
    seed_4848()
    run_beat(django_capture_on_commit_callbacks)
    [message] = smtp.inbox.messages
    assert message["To"] == "natthan.pigoux@cta-consortium.org"
    assert "328 (14.6%)" in parts(message)[0]


def test_import_mailto_command_and_a_user_created_later(django_user_model):
    policy = seed_policy(mail_to=["late@example.org"])
    sub = Subscription.objects.get()
    assert sub.user is None
    make_user(django_user_model, "late", "late@example.org")
    out = _out("digest", "import-mailto")
    assert "late@example.org: address-only subscription now belongs to user late" in out
    sub.refresh_from_db()
    assert sub.user.username == "late" and sub.email == ""
    assert "imported before" in _out("digest", "import-mailto", "--policy", policy.name)
    with pytest.raises(CommandError, match="no policy named 'nope'"):
        call_command("digest", "import-mailto", "--policy", "nope")


def test_an_empty_report_option_reports_nothing_but_still_mails_actions(django_user_model):
    seed_policy(report_types=[], mail_to=["ops@example.org"])
    sub = Subscription.objects.get()
    assert not sub.want_reports and sub.want_actions and sub.transformation_types == []


def test_proposals_and_attention_items_are_in_the_digest(smtp, lucia):
    seed_policy()
    Subscription.objects.create(user=lucia, frequency="daily", hour=0, created=timezone.now() - timedelta(days=2))
    seed_4848()
    TransformationState.objects.filter(pk=4847).update(status="Active")
    found = Blocker(blockers.ASSIGNED_FINAL, "(as the engine words it)", count=3, fix="reassign")
    attention.save_blockers(4847, [found])
    ActionLog.objects.create(transformation_id=4847, kind="complete", state="proposed",
                             reason="all files Processed and the parent is done")
    [record] = sending.plan()
    assert "Proposals waiting for an operator" in record.text
    assert "Complete: all files Processed and the parent is done" in record.text
    assert "Assigned files of finished jobs" in record.text
    assert f"{SITE}/proposals/?t=4847" in record.html
    assert "1 proposal waiting for an operator" in record.text and "1 attention item" in record.text


def test_send_for_one_user_only(smtp, subscribed, django_user_model):
    other = make_user(django_user_model, "otto", "otto@example.org")
    Subscription.objects.create(user=other, frequency="cycle", created=timezone.now() - timedelta(hours=1))
    seed_4848()
    out = _out("digest", "send", "--user", "otto")
    assert "to otto@example.org: sent to otto@example.org" in out and "lucia" not in out
    assert [m["To"] for m in smtp.inbox.messages] == ["otto@example.org"]
    with pytest.raises(CommandError, match="nobody has no active subscription"):
        call_command("digest", "send", "--user", "nobody")


def test_housekeeping_drops_stale_news_and_old_bodies(smtp, subscribed, time_machine):
    seed_4848()
    [record] = sending.plan()
    sending.deliver(record.pk)
    Cycle.objects.create(started=timezone.now(), finished=timezone.now() + timedelta(seconds=5), state="finished",
                         trigger="beat")
    time_machine.move_to(timezone.now() + timedelta(seconds=10))
    ActionLog.objects.create(transformation_id=4848, kind="flush", state="done", reason="again")
    Cycle.objects.create(started=timezone.now(), finished=timezone.now() + timedelta(seconds=5), state="finished",
                         trigger="beat")
    time_machine.move_to(timezone.now() + timedelta(seconds=10))
    [late] = sending.plan()  # recorded, never sent (mail down, workers gone)
    time_machine.move_to(timezone.now() + timedelta(days=2))
    sending.housekeeping()
    late.refresh_from_db()
    assert late.state == "failed" and late.last_error == "not sent within a day: dropped"
    assert not check_mail().ok
    time_machine.move_to(timezone.now() + timedelta(days=30))
    sending.housekeeping()
    record.refresh_from_db()
    assert record.state == "sent" and record.html == "" and record.snapshot  # the row and snapshot stay


def test_import_mailto_also_imports_the_recovery_policy_s_mailto(django_user_model):
    from failover.models import RecoveryPolicy

    user = make_user(django_user_model, "rita", "rita@example.org")
    # Saving the recovery policy imports its MailTo, as a failover policy's save does.
    recovery = RecoveryPolicy.objects.create(name="recovery", mail_to=["Rita <rita@example.org>, ops@example.org",
                                                                       "not-an-address"])
    subs = {s.address: s for s in Subscription.objects.all()}
    assert set(subs) == {"rita@example.org", "ops@example.org"}
    assert subs["rita@example.org"].user == user and subs["ops@example.org"].user is None
    for sub in subs.values():
        assert (sub.frequency, sub.want_reports, sub.want_actions, sub.want_proposals, sub.want_attention) == (
            "every_cycle", False, True, True, False)
        assert sub.source == f"MailTo of recovery policy recovery (id {recovery.pk})"
    # The command says what it did per policy, once per address: a second run changes nothing.
    out = _out("digest", "import-mailto", "--policy", "recovery")
    assert "recovery policy recovery: rita@example.org: imported before, left as it is" in out
    assert "recovery policy recovery: 'not-an-address': not an e-mail address, skipped" in out
    assert Subscription.objects.count() == 2
    # A deleted subscription is not brought back; an address added later is imported.
    subs["ops@example.org"].delete()
    RecoveryPolicy.objects.filter(pk=recovery.pk).update(mail_to=["ops@example.org", "late@example.org"])
    out = _out("digest", "import-mailto")
    assert "recovery policy recovery: late@example.org: new subscription for the address only" in out
    assert "recovery policy recovery: ops@example.org: imported before" in out
    assert sorted(Subscription.objects.values_list("email", flat=True)) == ["", "late@example.org"]
    # The failover policy's MailTo is its own: the same address gets the agent's subscription too.
    seed_policy(mail_to=["late@example.org"])
    assert Subscription.objects.filter(email="late@example.org").count() == 2
