"""Strict parsers for settings read from the environment.

A value that does not parse stops start-up with ImproperlyConfigured naming the variable, rather
than silently becoming something else (the classic `DEBUG=flase` that turns out true).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_url(name: str, default: str = "") -> str:
    """An http(s) address without its trailing slash, or "" when unset or empty."""
    raw = os.environ.get(name, default).strip()
    if not raw:
        return ""
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", raw):
        raise ImproperlyConfigured(f"{name}={raw!r} is not an http:// or https:// address (e.g. https://host/DIRAC)")
    return raw.rstrip("/")


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


_INTEGER = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _number(name: str, default, cast: Callable, kind: str, pattern: re.Pattern, minimum=None, maximum=None):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    # Plain ASCII digits only: float() also takes "nan", "inf" and "1_0", int() takes "١٢";
    # none of them is a number anyone means for a setting (NaN passes every comparison).
    if not pattern.fullmatch(text):
        raise ImproperlyConfigured(f"{name}={raw!r} is not {kind}")
    value = cast(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise ImproperlyConfigured(f"{name}={raw!r} is not {kind}")
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at most {maximum}")
    return value


def env_int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    return _number(name, default, int, "an integer", _INTEGER, minimum, maximum)


def env_float(name: str, default: float, minimum: float | None = None, maximum: float | None = None) -> float:
    return _number(name, default, float, "a number", _FLOAT, minimum, maximum)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def env_log_level(name: str, default: str = "INFO") -> str:
    """A logging level name, any case (logging itself only takes upper case, with a traceback)."""
    raw = os.environ.get(name, default)
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a log level (use one of: {', '.join(LOG_LEVELS)})")
    return value


def env_dir(name: str, default: str) -> Path:
    """A folder this process writes to: created if missing, and tried, so that a path that
    cannot be a folder (``/proc/nope``) or is read-only stops start-up with one line."""
    path = Path(os.environ.get(name) or default)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ImproperlyConfigured(
            f"{name}={str(path)!r} is not a writable folder: {exc.strerror or exc}"
        ) from None
    return path


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
