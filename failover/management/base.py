"""Commands that turn the domain's errors into one clear line and exit status 1."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from failover.errors import FailoverError


class FriendlyCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except FailoverError as exc:
            raise CommandError(str(exc)) from None
