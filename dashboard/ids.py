"""The one parser for every id and number a user types (query strings, forms, paths).

``str.isdigit()`` is true for "²" and "١٢", which ``int()`` then refuses or silently converts,
and a number too large for the database makes the query itself fail (OverflowError on SQLite,
an out-of-range error on PostgreSQL). So every id goes through :func:`parse_id`: ASCII digits
only, within the range of the column it is compared with, else :class:`BadNumber` with a
message for the user. :class:`IdField` is the same rule as a form field, and :class:`IdConverter`
as the ``<id:...>`` path converter.
"""

from __future__ import annotations

import re

from django import forms
from django.urls import register_converter

# The integer columns we compare with: IntegerField is 32-bit on PostgreSQL and MySQL (and on
# DIRAC's side), BigAutoField (our primary keys) 64-bit everywhere.
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1

_ASCII_DIGITS = re.compile(r"[0-9]+")
MAX_DIGITS = 19  # longer input is refused before any conversion (no huge int() of a long string)


class BadNumber(ValueError):
    """Input that is not an acceptable id; ``str()`` is a message for the user."""


def parse_id(raw, *, what: str = "id", minimum: int = 0, maximum: int = INT_MAX) -> int:
    """``raw`` (a string from a request) as an int within [minimum, maximum], or BadNumber."""
    text = "" if raw is None else str(raw).strip()
    if not text:
        raise BadNumber(f"Give a {what}: a whole number.")
    shown = text if len(text) <= 30 else text[:27] + "..."
    if len(text) > MAX_DIGITS or not _ASCII_DIGITS.fullmatch(text):
        if _ASCII_DIGITS.fullmatch(text):
            raise BadNumber(f"{shown} is too large for a {what} (at most {maximum}).")
        raise BadNumber(f"Enter a whole number, digits 0-9 only: {shown} is not a {what}.")
    value = int(text)
    if value < minimum:
        raise BadNumber(f"A {what} is at least {minimum}; {value} is not.")
    if value > maximum:
        raise BadNumber(f"{value} is too large for a {what} (at most {maximum}).")
    return value


def parse_optional_id(raw, **kwargs) -> int | None:
    """Like :func:`parse_id`, but a missing or empty value is None."""
    if raw is None or str(raw).strip() == "":
        return None
    return parse_id(raw, **kwargs)


class IdField(forms.Field):
    """A form field for one id (or number) under :func:`parse_id`'s rules."""

    widget = forms.NumberInput

    def __init__(self, *, what: str = "id", minimum: int = 0, maximum: int = INT_MAX, **kwargs):
        self.what, self.minimum, self.maximum = what, minimum, maximum
        super().__init__(**kwargs)

    def to_python(self, value) -> int | None:
        if value in self.empty_values:
            return None
        try:
            return parse_id(value, what=self.what, minimum=self.minimum, maximum=self.maximum)
        except BadNumber as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None

    def widget_attrs(self, widget):
        attrs = super().widget_attrs(widget)
        if isinstance(widget, forms.NumberInput):
            attrs.setdefault("min", self.minimum)
            attrs.setdefault("max", self.maximum)
        return attrs


class IdConverter:
    """``<id:name>`` in a URL: ASCII digits within the 32-bit range; anything else does not match (404)."""

    regex = "[0-9]{1,10}"

    def to_python(self, value: str) -> int:
        try:
            return parse_id(value)
        except BadNumber as exc:
            raise ValueError(str(exc)) from None  # Django's signal for "no match"

    def to_url(self, value) -> str:
        return str(int(value))


class PkConverter(IdConverter):
    """``<pk:name>``: a 64-bit primary key."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        try:
            return parse_id(value, maximum=BIGINT_MAX)
        except BadNumber as exc:
            raise ValueError(str(exc)) from None


# Registered once, when a URL configuration imports this module.
register_converter(IdConverter, "id")
register_converter(PkConverter, "pk")
