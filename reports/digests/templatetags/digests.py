"""Filters for the digest templates."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def get(mapping, key):
    """``{{ colours|get:state }}``: a dict entry, or "" when absent."""
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""
