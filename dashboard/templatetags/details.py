"""``{% details_table value %}``: an action's details (or a policy's options) as nested tables, not JSON."""

from __future__ import annotations

import json

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

register = template.Library()

MAX_ITEMS = 200  # of one list: an action may name thousands of files
MAX_DEPTH = 4


def _label(key) -> str:
    return str(key).replace("_", " ")


def render_value(value, depth: int = 0):
    if isinstance(value, dict):
        if not value:
            return mark_safe('<span class="muted">none</span>')
        if depth >= MAX_DEPTH:
            return format_html("<code>{}</code>", json.dumps(value, sort_keys=True))
        records = list(value.values())
        if all(isinstance(r, dict) and r and all(not isinstance(v, (dict, list)) for v in r.values()) for r in records):
            columns = list(dict.fromkeys(k for r in records for k in r))
            if all(set(r) == set(columns) for r in records):
                # Rows of one shape (a job per task): one table with a column per field.
                head = format_html_join("", '<th scope="col">{}</th>', ((_label(c),) for c in columns))
                body = format_html_join("", "<tr>{}</tr>", ((format_html(
                    '<th scope="row">{}</th>{}', key,
                    format_html_join("", "<td>{}</td>", ((render_value(r[c], depth + 1),) for c in columns))),)
                    for key, r in value.items()))
                return format_html('<table class="grid compact details"><thead><tr><th></th>{}</tr></thead>'
                                   "<tbody>{}</tbody></table>", head, body)
        rows = format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>',
                                ((_label(k), render_value(v, depth + 1)) for k, v in value.items()))
        return format_html('<table class="grid compact details">{}</table>', rows)
    if isinstance(value, list):
        if not value:
            return mark_safe('<span class="muted">none</span>')
        if all(not isinstance(v, (dict, list)) for v in value):
            shown = format_html_join("", "<li>{}</li>", ((v,) for v in value[:MAX_ITEMS]))
            more = len(value) - MAX_ITEMS
            tail = format_html('<li class="muted">and {} more</li>', more) if more > 0 else ""
            return format_html('<ul class="plain-list" data-count="{}">{}{}</ul>', len(value), shown, tail)
        return format_html_join("", "<div>{}</div>", ((render_value(v, depth + 1),) for v in value[:MAX_ITEMS]))
    if value is None:
        return mark_safe('<span class="muted">—</span>')
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@register.simple_tag
def details_table(value):
    return render_value(value)


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=1, sort_keys=True)
