"""Filters of the action log (the audit page, its CSV and ``/api/actions/``) with django-filter.

The form (``AuditFilterForm``) keeps its fields, widgets and messages; django-filter applies each
valid field to the query. The page shows an invalid field as an error and ignores it; the API
refuses it with a 400 naming the field.
"""

from __future__ import annotations

import django_filters as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from dashboard.forms import AuditFilterForm
from failover.models import ActionLog


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """A transformation id, read by the form's IdField (ASCII digits within the column's range)."""


@extend_schema_field(OpenApiTypes.DATE)
class DayFilter(filters.DateFilter):
    pass


class ActionLogFilter(filters.FilterSet):
    transformation = IdFilter(field_name="transformation_id", help_text="transformation id")
    kind = filters.ChoiceFilter(choices=ActionLog.Kind.choices)
    state = filters.ChoiceFilter(choices=ActionLog.State.choices)
    actor = filters.CharFilter(lookup_expr="iexact", help_text="a user name, or system")
    since = DayFilter(field_name="created", lookup_expr="date__gte", help_text="from this day on (UTC)")
    until = DayFilter(field_name="created", lookup_expr="date__lte", help_text="up to this day (UTC)")

    class Meta:
        model = ActionLog
        fields = ["transformation", "kind", "state", "actor", "since", "until"]
        form = AuditFilterForm

    @classmethod
    def get_form_class(cls):
        # The form's own fields (the one id parser, "any" choices, date inputs), not fields made
        # from the filters: the filters only apply the cleaned values.
        return cls._meta.form
