"""Recovery findings reach the digests as attention items (failover/attention.py, code recovery)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from failover.models import RecoveryFinding, TransformationState
from reports.digests import sending
from reports.digests.models import Subscription
from tests.digests_support import make_user, seed_4848
from tests.factories import seed_policy

pytestmark = pytest.mark.django_db


def test_a_recovery_finding_waiting_for_approval_is_in_the_digest(django_user_model):
    lucia = make_user(django_user_model, "lucia", "lucia@example.org")
    seed_policy()
    Subscription.objects.create(user=lucia, frequency="daily", hour=0, created=timezone.now() - timedelta(days=2))
    seed_4848()
    TransformationState.objects.filter(pk=4847).update(status="Active")
    RecoveryFinding.objects.create(transformation_id=4847, case="output_exists_failed", job=77, task=7,
                                   state="proposed", actions=["job_done", "inputs_processed"])
    [record] = sending.plan()
    assert "Recovery finding" in record.text
    assert "Outputs exist, job Failed: job Done, inputs Processed: 1 job (proposed 1)" in record.text
