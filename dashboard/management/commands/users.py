"""``manage.py users add NAME --role viewer|operator|admin``, ``users list`` and ``users token NAME``.

The password comes from the environment variable FAILOVER_PASSWORD, or is prompted for (twice).
``users token NAME`` makes the account's API token, or a new one in its place (the old one stops
working at once), and prints it once: only its SHA-256 is stored. ``--revoke`` removes it.
"""

from __future__ import annotations

import getpass
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from dashboard.roles import ADMIN, ROLES, role_of

PASSWORD_ENV = "FAILOVER_PASSWORD"


class Command(BaseCommand):
    help = "Create dashboard accounts with a role, or list them."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        add = sub.add_parser("add", help=f"create an account (password from ${PASSWORD_ENV} or prompted)")
        add.add_argument("name")
        add.add_argument("--role", choices=ROLES, required=True)
        add.add_argument("--email", default="")
        add.add_argument("--update", action="store_true",
                         help="if the account exists, set its role and password instead of failing")
        sub.add_parser("list", help="list accounts and their roles")
        token = sub.add_parser("token", help="make (or rotate) an account's API token and print it once")
        token.add_argument("name")
        token.add_argument("--revoke", action="store_true", help="remove the account's token instead")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"do_{action}")(**options)

    def do_add(self, name: str, role: str, email: str, update: bool, **_) -> None:
        User = get_user_model()
        existing = User.objects.filter(username=name).first()
        if existing is not None and not update:
            raise CommandError(f"account {name!r} exists (use --update to change its role and password)")
        password = self._password(name)
        with transaction.atomic():
            user = existing or User(username=name)
            user.email = email or user.email
            user.is_staff = role == ADMIN  # administrators edit policies and users in /admin/
            user.set_password(password)
            user.save()
            user.groups.remove(*Group.objects.filter(name__in=ROLES))
            group = Group.objects.filter(name=role).first()
            if group is None:
                raise CommandError("the role groups are missing: run `manage.py migrate` first")
            user.groups.add(group)
        self.stdout.write(f"{'Updated' if existing else 'Created'} {name!r} with role {role}")

    def _password(self, name: str) -> str:
        password = os.environ.get(PASSWORD_ENV)
        if password is None:
            if not self.stdin_is_tty():
                raise CommandError(f"no password: set {PASSWORD_ENV} or run in a terminal to be prompted")
            password = getpass.getpass(f"Password for {name}: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the passwords differ")
        if not password:
            raise CommandError("the password is empty")
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        return password

    @staticmethod
    def stdin_is_tty() -> bool:
        import sys

        return sys.stdin.isatty()

    def do_token(self, name: str, revoke: bool, **_) -> None:
        from dashboard.models import ApiToken

        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise CommandError(f"no account {name!r}: create it with `manage.py users add {name} --role viewer`")
        if revoke:
            deleted, _ = ApiToken.objects.filter(user=user).delete()
            self.stdout.write(f"Removed the API token of {name!r}" if deleted else f"{name!r} had no API token")
            return
        if not user.is_active:
            raise CommandError(f"account {name!r} is disabled: a token would not work")
        role = role_of(user)
        if role is None:
            raise CommandError(f"account {name!r} has no role: give it one with `manage.py users add {name} "
                               "--role viewer --update`")
        rotated = ApiToken.objects.filter(user=user).exists()
        key = ApiToken.issue(user)
        self.stderr.write(f"{'New' if rotated else 'Made an'} API token for {name!r} ({role})"
                          f"{'; the old one no longer works' if rotated else ''}. It is shown once; use it as "
                          "the header `Authorization: Token KEY`.")
        self.stdout.write(key)

    def do_list(self, **_) -> None:
        for user in get_user_model().objects.order_by("username"):
            state = "" if user.is_active else " (inactive)"
            self.stdout.write(f"{user.username}\t{role_of(user) or '(no role)'}{state}")
