"""Commands that turn the domain's errors into one clear line and exit status 1, and keep
standard output for their own output."""

from __future__ import annotations

import contextlib
import sys

from django.core.management.base import BaseCommand, CommandError

from failover.errors import FailoverError


class FriendlyCommand(BaseCommand):
    def execute(self, *args, **options):
        # The command writes through self.stdout, bound here to the real standard output; while
        # it runs, whatever a library prints (DIRAC's clients do) goes to stderr instead, so
        # `failover cycle --json` or `report --format json` stay data and nothing else.
        if not options.get("stdout"):
            options["stdout"] = sys.stdout
        try:
            with contextlib.redirect_stdout(sys.stderr):
                return super().execute(*args, **options)
        except FailoverError as exc:
            raise CommandError(str(exc)) from None
