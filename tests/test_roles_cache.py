"""Roles are kept in the shared cache between requests (dashboard/roles.py); every way a role can
change must reach the next request at once, through the real database and cache."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from dashboard.roles import ADMIN, OPERATOR, VIEWER, role_of

pytestmark = pytest.mark.django_db


def fresh(user):
    """The account as the next request loads it (no per-request memo)."""
    return get_user_model().objects.get(pk=user.pk)


@pytest.fixture
def groups():
    return {name: Group.objects.get_or_create(name=name)[0] for name in (VIEWER, OPERATOR, ADMIN)}


def test_a_role_is_read_once_then_kept(groups, django_assert_num_queries):
    user = get_user_model().objects.create_user("ann", password="x")
    user.groups.add(groups[OPERATOR])
    assert role_of(fresh(user)) == OPERATOR
    again = fresh(user)
    with django_assert_num_queries(0):
        assert role_of(again) == OPERATOR


def test_every_change_of_groups_reaches_the_next_request(groups):
    user = get_user_model().objects.create_user("bob", password="x")
    assert role_of(fresh(user)) is None
    user.groups.add(groups[VIEWER])
    assert role_of(fresh(user)) == VIEWER
    groups[OPERATOR].user_set.add(user)  # from the group's side
    assert role_of(fresh(user)) == OPERATOR
    groups[OPERATOR].user_set.remove(user)
    assert role_of(fresh(user)) == VIEWER
    groups[VIEWER].user_set.clear()
    assert role_of(fresh(user)) is None
    user.groups.set([groups[ADMIN]])
    assert role_of(fresh(user)) == ADMIN
    user.groups.clear()
    assert role_of(fresh(user)) is None


def test_a_renamed_or_deleted_group_takes_its_role_away(groups):
    user = get_user_model().objects.create_user("cy", password="x")
    user.groups.add(groups[OPERATOR])
    assert role_of(fresh(user)) == OPERATOR
    groups[OPERATOR].name = "former operators"
    groups[OPERATOR].save()
    assert role_of(fresh(user)) is None
    user.groups.add(groups[VIEWER])
    assert role_of(fresh(user)) == VIEWER
    groups[VIEWER].delete()
    assert role_of(fresh(user)) is None


def test_a_deactivated_account_or_a_new_account_with_an_old_id_has_no_kept_role(groups):
    user = get_user_model().objects.create_user("dee", password="x")
    user.groups.add(groups[ADMIN])
    assert role_of(fresh(user)) == ADMIN
    user.is_active = False
    user.save()
    assert role_of(fresh(user)) is None
    pk = user.pk
    user.delete()
    newcomer = get_user_model().objects.create_user("eve", password="x", pk=pk)
    assert role_of(fresh(newcomer)) is None


def test_a_demoted_operator_is_refused_at_the_next_request(client, groups):
    user = get_user_model().objects.create_user("fay", password="x")
    user.groups.add(groups[OPERATOR])
    client.force_login(user)
    assert client.get("/").status_code == 200
    user.groups.clear()
    assert client.get("/").status_code == 403
