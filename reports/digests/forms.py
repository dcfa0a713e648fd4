"""The subscription form: lists typed as text, each entry checked against what the cycles have seen."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.template.defaultfilters import pluralize

from dashboard.ids import BadNumber, parse_id
from failover.models import Policy, TransformationState
from reports.digests.models import Subscription

_SPLIT = re.compile(r"[\s,;]+")


def _tokens(value: str) -> list[str]:
    return [t for t in _SPLIT.split(value or "") if t]


def _ids(value: str, what: str) -> list[int]:
    out, bad = [], []
    for token in _tokens(value):
        try:
            number = parse_id(token, what=what, minimum=1)
        except BadNumber:
            bad.append(token if len(token) <= 30 else token[:27] + "...")
            continue
        if number not in out:
            out.append(number)
    if bad:
        raise forms.ValidationError(
            f"Not {'' if len(bad) > 1 else 'a '}{what} number{pluralize(len(bad))}: {', '.join(bad[:5])}. "
            "Give whole numbers separated by commas, e.g. 7, 12."
        )
    return out


def known_types() -> list[str]:
    policy = Policy.current()
    types = set(TransformationState.objects.exclude(type="").values_list("type", flat=True).distinct())
    for field in ("transformation_types", "report_types", "complete_types", "flush_types", "reassign_types"):
        types.update(getattr(policy, field) or [])
    return sorted(types)


class SubscriptionForm(forms.ModelForm):
    productions = forms.CharField(
        required=False, label="Productions", help_text="Production numbers, separated by commas.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 7, 12"}),
    )
    transformation_types = forms.CharField(
        required=False, label="Transformation types", help_text="Types, separated by commas.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. Merging, DataReprocessing"}),
    )
    transformations = forms.CharField(
        required=False, label="Transformations", help_text="Transformation numbers, always included.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 4848"}),
    )
    hour = forms.TypedChoiceField(
        coerce=int, choices=[(h, f"{h:02d}:00") for h in range(24)], label="Hour",
    )
    min_failed_share = forms.FloatField(
        min_value=0, max_value=100, label="Failed jobs at or above (%)",
        help_text="0 sends the report of every transformation with jobs.",
        error_messages={
            "min_value": "The failed share is a percentage: 0 to 100.",
            "max_value": "The failed share is a percentage: 0 to 100.",
            "invalid": "The failed share is a percentage: a number from 0 to 100.",
            "required": "Give the failed share from which a report is sent (0 for every report).",
        },
    )

    class Meta:
        model = Subscription
        fields = [
            "name", "productions", "transformation_types", "transformations", "frequency", "hour", "weekday",
            "want_reports", "min_failed_share", "want_actions", "want_attention", "want_proposals", "active",
        ]
        labels = {
            "name": "Name",
            "frequency": "When",
            "weekday": "Day of the week",
            "want_reports": "Job reports",
            "want_actions": "Actions taken (complete, flush, reassign)",
            "want_attention": "Attention items",
            "want_proposals": "Proposals waiting for an operator",
            "active": "Active",
        }
        widgets = {
            "frequency": forms.RadioSelect,
            "name": forms.TextInput(attrs={"placeholder": "e.g. Prod5b merging"}),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["hour"].help_text = f"Time zone {settings.TIME_ZONE}; for daily and weekly digests."
        self.fields["min_failed_share"].required = False
        if self.instance.pk:
            self.initial["productions"] = ", ".join(map(str, self.instance.productions))
            self.initial["transformation_types"] = ", ".join(self.instance.transformation_types)
            self.initial["transformations"] = ", ".join(map(str, self.instance.transformations))
        self.known_types = known_types()
        if self.known_types:
            self.fields["transformation_types"].help_text = "Known types: " + ", ".join(self.known_types) + "."

    def clean_name(self) -> str:
        return self.cleaned_data["name"].strip()

    def clean_productions(self) -> list[int]:
        ids = _ids(self.cleaned_data["productions"], "production")
        seen = set(TransformationState.objects.filter(production_id__in=ids).values_list("production_id", flat=True))
        unknown = [str(i) for i in ids if i not in seen]
        if unknown:
            raise forms.ValidationError(
                f"Unknown production{pluralize(len(unknown))}: {', '.join(unknown)}. "
                "No failover cycle has seen a step of it; check the number."
            )
        return ids

    def clean_transformations(self) -> list[int]:
        ids = _ids(self.cleaned_data["transformations"], "transformation")
        seen = set(TransformationState.objects.filter(pk__in=ids).values_list("pk", flat=True))
        unknown = [str(i) for i in ids if i not in seen]
        if unknown:
            raise forms.ValidationError(
                f"Unknown transformation{pluralize(len(unknown))}: {', '.join(unknown)}. "
                "No failover cycle has seen it; check the number."
            )
        return ids

    def clean_transformation_types(self) -> list[str]:
        types = []
        by_lower = {t.lower(): t for t in self.known_types}
        unknown = []
        for token in _tokens(self.cleaned_data["transformation_types"]):
            name = by_lower.get(token.lower())
            if name is None:
                unknown.append(token)
            elif name not in types:
                types.append(name)
        if unknown:
            known = ", ".join(self.known_types) if self.known_types else "none seen yet"
            raise forms.ValidationError(f"Unknown transformation type: {', '.join(unknown)}. Known types: {known}.")
        return types

    def clean(self):
        data = super().clean()
        if self.user is not None and not self.user.email:
            raise forms.ValidationError(
                "Your account has no e-mail address, so no digest can reach you: ask an administrator to set one."
            )
        if not any(data.get(f) for f in ("want_reports", "want_actions", "want_attention", "want_proposals")):
            raise forms.ValidationError("Choose at least one thing to receive: reports, actions, attention items "
                                        "or proposals.")
        if data.get("want_reports") and data.get("min_failed_share") is None and "min_failed_share" not in self.errors:
            self.add_error("min_failed_share", self.fields["min_failed_share"].error_messages["required"])
        if not data.get("want_reports") and data.get("min_failed_share") is None:
            data["min_failed_share"] = self.instance.min_failed_share
        return data

    def save(self, commit: bool = True) -> Subscription:
        sub = super().save(commit=False)
        if self.user is not None and sub.user_id is None:
            sub.user = self.user
        if commit:
            sub.save()
        return sub
