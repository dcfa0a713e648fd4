"""``manage.py migrate`` sets up every database: the dashboard's and the simulated DIRAC's.

Django's own ``migrate`` touches only ``--database`` (``default`` when not given), so the
simulator's tables, which the router keeps in the ``simdirac`` database, were never created by
a plain ``migrate``. Without ``--database`` this one migrates each database in
``settings.DATABASES`` in turn; with it, only that one, exactly as Django does (the test runner
and ``migrate --database simdirac`` keep working).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrate


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " Without --database: every database (default, then simdirac)."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(database=None)

    def get_check_kwargs(self, options):
        kwargs = super().get_check_kwargs(options)
        if options.get("database") is None:
            kwargs["databases"] = list(settings.DATABASES)
        return kwargs

    def handle(self, *args, **options):
        if options.get("database") is not None:
            return super().handle(*args, **options)
        for alias in settings.DATABASES:
            if options["verbosity"] >= 1:
                self.stdout.write(self.style.MIGRATE_HEADING(f"Database {alias}:"))
            super().handle(*args, **{**options, "database": alias})
