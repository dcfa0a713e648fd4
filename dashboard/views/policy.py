"""``/policy/``: the policy's options for everyone with a role to read, and for administrators to change.

Every change is audited: a ``PolicyChange`` (who, when, the options before and after) listed in
the audit log, with a page of its own. The Django admin stays for experts (names, enabling).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from dashboard.models import PolicyChange
from dashboard.policy_form import OPTION, PolicyForm
from dashboard.roles import ADMIN, has_role
from dashboard.views.access import viewer_required
from failover.models import Policy

ADMINS_ONLY = "Only administrators may change the policy; your role lets you read it."
ROLES = (
    ("viewer", "sees every page: transformations, reports, attention items, proposals, the audit log and "
               "this policy; reads the JSON API."),
    ("operator", "everything a viewer does, and acts: the buttons (sync, complete, flush, reassign) and "
                 "approving or rejecting proposals."),
    ("admin", "everything an operator does, and changes this policy; in the Django admin also creates "
              "accounts and gives them a role."),
)


def _policy_or_404(pk: int | None) -> Policy:
    if pk is None:
        return Policy.current()  # the policy in use (unsaved defaults if none is stored yet)
    policy = Policy.objects.filter(pk=pk).first()
    if policy is None:
        raise Http404(f"Policy {pk} does not exist.")
    return policy


@require_http_methods(["GET", "POST"])
@viewer_required
def policy_page(request, pk: int | None = None):
    policy = _policy_or_404(pk)
    may_edit = has_role(request.user, ADMIN)
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied(ADMINS_ONLY)
        form = PolicyForm(request.POST, policy=policy)
        if form.is_valid():
            try:
                change = form.save_audited(request.user)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                if change is None:
                    messages.info(request, "Nothing changed: the policy already has these values.")
                else:
                    names = ", ".join(OPTION[n] for n in change.changed)
                    messages.success(request, f"Policy {change.policy_name} saved: {names} changed "
                                              f"(audit entry {change.pk}).")
                return redirect("policy_edit", pk=form.policy.pk)
    else:
        form = PolicyForm(policy=policy)
    if not may_edit:
        for field in form.fields.values():
            field.disabled = True
    return render(request, "dashboard/policy.html", {
        "policy": policy, "form": form, "may_edit": may_edit, "roles": ROLES,
        "in_use": Policy.current(), "policies": Policy.objects.order_by("id"),
        "changes": PolicyChange.objects.filter(policy=policy)[:10] if policy.pk else [],
    })
