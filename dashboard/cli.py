"""One line for what stops a command before it can do its work (manage.py's entry)."""

from __future__ import annotations

import re

_NOT_MIGRATED = re.compile(r"no such table|relation .* does not exist|table .* doesn't exist", re.I)


def database_problem(exc: BaseException) -> str:
    """A DatabaseError as one line naming the problem and what to do about it."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
    if _NOT_MIGRATED.search(first):
        return (f"{first}: the database is not migrated; run python manage.py migrate "
                "(and migrate --database simdirac for the simulated DIRAC)")
    if "unable to open database file" in first:
        return f"{first}: check that the folder of DATABASE_URL / SIMDIRAC_DATABASE_URL exists and is writable"
    return f"{first} (check DATABASE_URL / SIMDIRAC_DATABASE_URL)"
