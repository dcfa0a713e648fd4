"""The policy page's form: the agent's options with multi-selects and checked numbers, and the
audited save (who, when, the options before and after, as a ``PolicyChange``)."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from dashboard.ids import IdField
from dashboard.models import POLICY_PAGE_FIELDS, PolicyChange
from failover.domain import TRANSFORMATION_STATUSES, TYPES_WITHOUT_INPUT
from failover.models import Policy, TransformationState

# The options the page edits, in its order: what a PolicyChange records before and after.
FIELDS = POLICY_PAGE_FIELDS
TYPE_LISTS = ("report_types", "complete_types", "flush_types", "reassign_types")
# The agent's option names, as a CS shows them.
OPTION = {"mode": "Mode", "transformation_statuses": "TransformationStatus",
          "transformation_types": "TransformationTypes", "report_types": "Report", "complete_types": "Complete",
          "flush_types": "Flush", "reassign_types": "Reassign", "max_reassign": "MaxReassign",
          "max_flush": "MaxFlush", "polling_time": "PollingTime", "mail_to": "MailTo", "mail_from": "MailFrom"}
MAX_COUNT = 1000  # MaxReassign and MaxFlush: far above any sensible value, far below the column's limit
MAX_POLLING = 7 * 86_400


def snapshot(policy: Policy) -> dict:
    """The edited options of ``policy`` as plain JSON values, in the page's order."""
    return {name: getattr(policy, name) for name in FIELDS}


def type_choices(policy: Policy) -> list[tuple[str, str]]:
    """The types a cycle has seen, those the policy names, and DIRAC's types without input files."""
    seen = set(TransformationState.objects.exclude(type="").values_list("type", flat=True).distinct())
    named = {t for name in ("transformation_types", *TYPE_LISTS) for t in (getattr(policy, name) or [])}
    return [(t, t) for t in sorted(seen | named | set(TYPES_WITHOUT_INPUT))]


class MailListField(forms.CharField):
    """MailTo: addresses separated by commas, spaces or lines, each checked."""

    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        addresses = [a for a in re.split(r"[\s,;]+", text) if a]
        bad = []
        for a in addresses:
            try:
                validate_email(a)
            except ValidationError:
                bad.append(a)
        if bad:
            raise ValidationError(f"Not an e-mail address: {', '.join(bad[:5])}.", code="invalid")
        return list(dict.fromkeys(addresses))

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value


class PolicyForm(forms.Form):
    mode = forms.ChoiceField(choices=Policy.Mode.choices, widget=forms.RadioSelect)
    transformation_statuses = forms.MultipleChoiceField(
        label="TransformationStatus", choices=[(s, s) for s in TRANSFORMATION_STATUSES],
        help_text="The cycle treats transformations in these statuses.",
        error_messages={"required": "Select at least one status: with none, the cycle treats no transformation."})
    transformation_types = forms.MultipleChoiceField(
        label="TransformationTypes", required=False,
        help_text="Only these types are treated; none selected: every type.")
    report_types = forms.MultipleChoiceField(label="Report", required=False,
                                             help_text="The agent's Report option: types whose job report it mailed.")
    complete_types = forms.MultipleChoiceField(label="Complete", required=False,
                                               help_text="Types set Completed once every file is Processed.")
    flush_types = forms.MultipleChoiceField(label="Flush", required=False,
                                            help_text="Types flushed once their parent is done.")
    reassign_types = forms.MultipleChoiceField(label="Reassign", required=False,
                                               help_text="Types whose failed jobs' files are set back to Unused.")
    max_reassign = IdField(label="MaxReassign", what="MaxReassign", minimum=0, maximum=MAX_COUNT,
                           help_text="Times one file may be set back to Unused (0: never).")
    max_flush = IdField(label="MaxFlush", what="MaxFlush", minimum=0, maximum=MAX_COUNT,
                        help_text="Flushes per transformation (0: never).")
    polling_time = IdField(label="PollingTime", what="PollingTime in seconds", minimum=1, maximum=MAX_POLLING,
                           help_text="Seconds between cycles; applies from the next beat tick, without restart.")
    mail_to = MailListField(label="MailTo", required=False, widget=forms.Textarea(attrs={"rows": 2}),
                            help_text="Addresses, separated by commas.")
    mail_from = forms.CharField(label="MailFrom", required=False, max_length=255)
    # The policy's last save time as the page was opened: a save over someone else's is refused.
    version = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, policy: Policy, **kwargs):
        self.policy = policy
        initial = {**snapshot(policy), "version": self._version(policy)}
        super().__init__(*args, initial=initial, **kwargs)
        choices = type_choices(policy)
        for name in ("transformation_types", *TYPE_LISTS):
            self.fields[name].choices = choices
            self.fields[name].widget.attrs["size"] = min(max(len(choices), 3), 8)
        self.fields["transformation_statuses"].widget.attrs["size"] = 8
        for field in self.fields.values():
            if isinstance(field, IdField):
                field.error_messages["required"] = f"Give a {field.what}: a whole number."

    @staticmethod
    def _version(policy: Policy) -> str:
        return policy.updated.isoformat() if policy.pk and policy.updated else ""

    def clean_mail_from(self) -> str:
        value = self.cleaned_data["mail_from"].strip()
        if value:
            validate_email(value)
        return value

    def clean(self):
        data = super().clean()
        selected = set(data.get("transformation_types") or [])
        if selected:
            for name in TYPE_LISTS:
                left_out = [t for t in data.get(name) or [] if t not in selected]
                if left_out:
                    self.add_error(name, f"{', '.join(left_out)} {'is' if len(left_out) == 1 else 'are'} not in "
                                         "TransformationTypes, so never treated: select "
                                         f"{'it' if len(left_out) == 1 else 'them'} there too, or select no type "
                                         "there (every type).")
        return data

    def save_audited(self, user) -> PolicyChange | None:
        """Write the options and a PolicyChange in one transaction; None when nothing changed.

        Refused (ValidationError) when the policy was saved by someone else since the page was opened.
        """
        with transaction.atomic():
            policy = self.policy
            if policy.pk:
                policy = Policy.objects.select_for_update().get(pk=policy.pk)
                if self.cleaned_data.get("version") != self._version(policy):
                    last = PolicyChange.objects.filter(policy=policy).first()
                    who = f" by {last.actor} at {last.created:%H:%M:%S} UTC" if last else ""
                    raise ValidationError(f"The policy was changed{who} since you opened this page: "
                                          "open it again to see the new values, then make your change.")
            before = snapshot(policy)
            after = {name: self.cleaned_data[name] for name in FIELDS}
            for name, value in after.items():
                # A multi-select posts in the order of its options: the same members are no change.
                if isinstance(value, list) and isinstance(before[name], list) and set(value) == set(before[name]):
                    after[name] = before[name]
            if after == before:
                return None
            for name, value in after.items():
                setattr(policy, name, value)
            policy.save()
            self.policy = policy
            return PolicyChange.objects.create(
                user=user, actor=user.get_username(), policy=policy, policy_name=policy.name,
                before=before, after=after,
            )
