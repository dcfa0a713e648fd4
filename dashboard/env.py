"""Strict parsers for settings read from the environment.

A value that does not parse stops start-up with ImproperlyConfigured naming the variable, rather
than silently becoming something else (the classic `DEBUG=flase` that turns out true).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")


def _number(name: str, default, cast: Callable, kind: str, minimum=None):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = cast(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not {kind}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    return _number(name, default, int, "an integer", minimum)


def env_float(name: str, default: float, minimum: float | None = None) -> float:
    return _number(name, default, float, "a number", minimum)


def env_list(name: str, default: Sequence[str] = ()) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: Sequence[str]) -> str:
    raw = os.environ.get(name, default).strip()
    if raw not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} is not one of: {', '.join(choices)}")
    return raw


def env_database(name: str, default: str) -> dict:
    import dj_database_url

    raw = os.environ.get(name, default)
    # Never echo a password into logs or terminals.
    shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", raw)
    try:
        config = dj_database_url.parse(raw, conn_max_age=0)
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        detail = str(exc).replace(raw, shown)
        raise ImproperlyConfigured(f"{name}={shown!r} is not a database URL: {detail}") from None
    if not config.get("ENGINE"):
        raise ImproperlyConfigured(f"{name}={shown!r} names no known database engine")
    return config
