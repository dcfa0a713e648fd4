#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A bad setting is the user's to fix: say which, without a traceback.
        sys.stderr.write(f"Configuration error: {exc}\n")
        sys.exit(1)
    except DatabaseError as exc:
        # Unreachable, in a missing folder, or not migrated: the same for every command.
        from dashboard.cli import database_problem

        sys.stderr.write(f"Database error: {database_problem(exc)}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
