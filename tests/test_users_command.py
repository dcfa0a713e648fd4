"""``manage.py users add NAME --role ...`` and ``users list``."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from dashboard.roles import role_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def users(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command("users", *args, stdout=out, **kwargs)
    return out.getvalue()


def test_it_adds_an_account_with_a_role_and_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("FAILOVER_PASSWORD", "op-pass-1")
    assert "Created 'otto' with role operator" in users("add", "otto", "--role", "operator")
    user = get_user_model().objects.get(username="otto")
    assert user.check_password("op-pass-1") and role_of(user) == "operator" and not user.is_staff
    assert "otto\toperator" in users("list")


def test_it_makes_administrators_staff(monkeypatch):
    monkeypatch.setenv("FAILOVER_PASSWORD", "admin-pass")
    users("add", "ada", "--role", "admin")
    user = get_user_model().objects.get(username="ada")
    assert user.is_staff and role_of(user) == "admin"
    assert user.has_perm("failover.change_policy") and user.has_perm("auth.add_user")


def test_it_refuses_an_existing_account_unless_asked_to_update(monkeypatch):
    monkeypatch.setenv("FAILOVER_PASSWORD", "pw-one")
    users("add", "vera", "--role", "viewer")
    with pytest.raises(CommandError, match="exists"):
        users("add", "vera", "--role", "operator")
    monkeypatch.setenv("FAILOVER_PASSWORD", "pw-two")
    users("add", "vera", "--role", "operator", "--update")
    user = get_user_model().objects.get(username="vera")
    assert role_of(user) == "operator" and user.check_password("pw-two")
    assert list(user.groups.values_list("name", flat=True)) == ["operator"]


def test_it_prompts_for_the_password_and_checks_it_twice(monkeypatch):
    monkeypatch.delenv("FAILOVER_PASSWORD", raising=False)
    from dashboard.management.commands import users as module

    monkeypatch.setattr(module.Command, "stdin_is_tty", staticmethod(lambda: True))
    answers = iter(["typed-pw", "typed-pw"])
    monkeypatch.setattr(module.getpass, "getpass", lambda prompt="": next(answers))
    users("add", "pat", "--role", "viewer")
    assert get_user_model().objects.get(username="pat").check_password("typed-pw")
    answers = iter(["one", "two"])
    with pytest.raises(CommandError, match="differ"):
        users("add", "sam", "--role", "viewer")


def test_it_refuses_without_a_password_when_not_interactive(monkeypatch):
    monkeypatch.delenv("FAILOVER_PASSWORD", raising=False)
    from dashboard.management.commands import users as module

    monkeypatch.setattr(module.Command, "stdin_is_tty", staticmethod(lambda: False))
    with pytest.raises(CommandError, match="FAILOVER_PASSWORD"):
        users("add", "pat", "--role", "viewer")
    with pytest.raises(CommandError):
        users("add", "pat", "--role", "superhero")
