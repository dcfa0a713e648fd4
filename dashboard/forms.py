"""Forms for every piece of HTML input: filters, selections, confirmations, decisions."""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator
from django.template.defaultfilters import pluralize

from dashboard.ids import BIGINT_MAX, BadNumber, IdField, parse_id
from failover import actions
from failover.models import ActionLog, TransformationState

PAGE_SIZE = 50


class IdListField(forms.Field):
    """Repeated ``t=<id>`` parameters (or one comma-separated value) as a list of ids, in order."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "too_many": "Select at most %(max)s transformations at once (%(n)s selected).",
    }

    def __init__(self, *, max_items: int = actions.MAX_SELECTION, **kwargs):
        self.max_items = max_items
        super().__init__(**kwargs)

    def to_python(self, value) -> list[int]:
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        out: list[int] = []
        for item in value:
            for part in str(item).replace(",", " ").split():
                try:
                    tid = parse_id(part, what="transformation id")
                except BadNumber as exc:
                    raise forms.ValidationError(str(exc), code="invalid") from None
                if tid not in out:
                    out.append(tid)
        if len(out) > self.max_items:
            raise forms.ValidationError(self.error_messages["too_many"], code="too_many",
                                        params={"max": self.max_items, "n": len(out)})
        return out


class _Choices:
    """Choices read from the database when the form is built, not at import time."""

    @staticmethod
    def distinct(field: str) -> list[tuple[str, str]]:
        from dashboard import pagecache

        def read() -> list[str]:
            return list(TransformationState.objects.order_by(field).values_list(field, flat=True).distinct())

        # A DISTINCT over every transformation: kept until a cycle or an action changes a row.
        values = pagecache.cached(f"distinct:{field}", pagecache.states_version(), read)
        return [("", "any")] + [(v, v) for v in values if v]


SORT_COLUMNS = ("id", "name", "type", "status", "parent", "production", "files", "jobs", "failed",
                "reassigned", "action", "forecast", "attention")


class OverviewFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search",
                        widget=forms.TextInput(attrs={"placeholder": "id or name", "type": "search"}))
    type = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False)
    production = IdField(required=False, what="production id", widget=forms.NumberInput(attrs={"placeholder": "id"}))
    attention = forms.BooleanField(required=False, label="Needs attention")
    sort = forms.ChoiceField(required=False, choices=[("", "")] + [(s, s) for d in ("", "-") for s in
                                                                    (d + c for c in SORT_COLUMNS)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = _Choices.distinct("type")
        self.fields["status"].choices = _Choices.distinct("status")

    def value(self, name: str, default=None):
        """The cleaned value, or ``default`` when missing or invalid (the other filters still apply)."""
        if not self.is_bound:
            return default
        self.is_valid()
        value = self.cleaned_data.get(name) if hasattr(self, "cleaned_data") else None
        return default if value in (None, "") else value


class SelectionForm(forms.Form):
    """Which transformations an action is about (GET: the preview)."""

    t = IdListField(label="Transformations")

    def clean_t(self) -> list[int]:
        ids = self.cleaned_data["t"]
        if not ids:
            raise forms.ValidationError("Select at least one transformation.")
        known = set(TransformationState.objects.filter(transformation_id__in=ids).values_list(
            "transformation_id", flat=True))
        unknown = [str(i) for i in ids if i not in known]
        if unknown:
            raise forms.ValidationError(f"Unknown transformation{pluralize(len(unknown))}: "
                                        f"{', '.join(unknown)}.")
        return ids


class ConfirmForm(SelectionForm):
    """The confirmation (POST): the same selection and the one-time key of this preview."""

    request_key = forms.CharField(
        widget=forms.HiddenInput,
        validators=[RegexValidator(r"^[0-9a-f]{32}$", "This form is damaged; open the preview again.")],
        error_messages={"required": "This form is damaged; open the preview again."},
    )


class CycleForm(forms.Form):
    cycle = IdField(required=False, minimum=1, maximum=BIGINT_MAX, what="cycle number", label="As of cycle")


class AcknowledgeForm(forms.Form):
    cycle = IdField(minimum=1, maximum=BIGINT_MAX, what="cycle number", widget=forms.HiddenInput,
                               error_messages={"required": "Say which cycle's report you acknowledge."})


class JobFilterForm(forms.Form):
    status = forms.CharField(required=False, max_length=32)
    minor_status = forms.CharField(required=False, max_length=128)
    application_status = forms.CharField(required=False, max_length=255)
    site = forms.CharField(required=False, max_length=64)
    task = IdField(required=False, what="task number", widget=forms.NumberInput(attrs={"placeholder": "any"}))
    sort = forms.CharField(required=False, max_length=32)


class ProductionFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search",
                        widget=forms.TextInput(attrs={"placeholder": "id or step name", "type": "search"}))
    sort = forms.CharField(required=False, max_length=32)


class AuditFilterForm(forms.Form):
    transformation = IdField(required=False, what="transformation id",
                             widget=forms.NumberInput(attrs={"placeholder": "id"}))
    kind = forms.ChoiceField(required=False, choices=[("", "any")] + list(ActionLog.Kind.choices))
    state = forms.ChoiceField(required=False, choices=[("", "any")] + list(ActionLog.State.choices))
    actor = forms.CharField(
        required=False, max_length=150, widget=forms.TextInput(attrs={"placeholder": "user or system"})
    )
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("“Since” is after “until”.")
        return data

class ProposalChoiceField(forms.ModelMultipleChoiceField):
    """Proposal numbers checked by the one id parser before the database sees them."""

    def _check_values(self, value):
        try:
            value = [parse_id(v, what="proposal number", minimum=1, maximum=BIGINT_MAX) for v in value]
        except (BadNumber, TypeError) as exc:
            raise forms.ValidationError(str(exc), code="invalid_pk_value") from None
        return super()._check_values(value)


class ProposalDecisionForm(forms.Form):
    DECISIONS = (("approve", "Approve"), ("reject", "Reject"), ("approve_all", "Approve all"))

    decision = forms.ChoiceField(choices=DECISIONS)
    proposals = ProposalChoiceField(
        queryset=ActionLog.objects.filter(state=ActionLog.State.PROPOSED), required=False,
        error_messages={"invalid_choice": "Proposal %(value)s is not waiting for approval any more.",
                        "invalid_pk_value": "“%(pk)s” is not a proposal number."},
    )
    reason = forms.CharField(required=False, max_length=500)
    # The page's one-time key: an approval is carried out once per key, in the background.
    request_key = forms.CharField(
        required=False, widget=forms.HiddenInput,
        validators=[RegexValidator(r"^[0-9a-f]{32}$", "This form is damaged; open the proposals page again.")],
    )

    def clean(self):
        data = super().clean()
        if data.get("decision") in ("approve", "reject") and not data.get("proposals"):
            if "proposals" not in self.errors:
                raise forms.ValidationError("Select at least one proposal.")
        if self.approving and not data.get("request_key") and "request_key" not in self.errors:
            raise forms.ValidationError("This form is damaged; open the proposals page again.")
        return data

    @property
    def approving(self) -> bool:
        return (self.cleaned_data if hasattr(self, "cleaned_data") else {}).get("decision") in ("approve",
                                                                                             "approve_all")

    def chosen(self) -> list[ActionLog]:
        if self.cleaned_data["decision"] == "approve_all":
            return list(ActionLog.objects.filter(state=ActionLog.State.PROPOSED).order_by("id"))
        return sorted(self.cleaned_data["proposals"], key=lambda p: p.pk)
