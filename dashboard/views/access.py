"""Access helpers: who may see and act, and lookups that answer 404 with a message."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404

from dashboard.roles import can_act, can_view
from failover.models import ActionLog, TransformationState

NO_ROLE = "Your account has no role yet: ask an administrator to make you a viewer or an operator."
OPERATORS_ONLY = "Only operators may do this; your role lets you see the pages."


def viewer_required(view):
    """Signed in (else the login page) and at least a viewer (else 403)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can_view(request.user):
            raise PermissionDenied(NO_ROLE)
        return view(request, *args, **kwargs)

    return wrapper


def operator_required(view):
    """Signed in (else the login page) and an operator or administrator (else 403)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can_view(request.user):
            raise PermissionDenied(NO_ROLE)
        if not can_act(request.user):
            raise PermissionDenied(OPERATORS_ONLY)
        return view(request, *args, **kwargs)

    return wrapper


def get_state_or_404(transformation_id: int) -> TransformationState:
    state = TransformationState.objects.select_related("last_cycle").filter(
        transformation_id=transformation_id
    ).first()
    if state is None:
        raise Http404(
            f"Transformation {transformation_id} is unknown: no failover cycle has seen it. "
            "Check the number, or wait for the next cycle if it was just created."
        )
    return state


def get_production_or_404(production_id: int) -> list[TransformationState]:
    steps = list(TransformationState.objects.filter(production_id=production_id).order_by("transformation_id"))
    if not steps:
        raise Http404(f"Production {production_id} is unknown: no failover cycle has seen a step of it.")
    return steps


def get_action_or_404(action_id: int) -> ActionLog:
    action = ActionLog.objects.filter(pk=action_id).first()
    if action is None:
        raise Http404(f"Action {action_id} does not exist.")
    return action
