"""Each user's subscriptions page, and the unsubscribe link that works without logging in."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from dashboard.views.access import viewer_required
from reports.digests import sending
from reports.digests.forms import SubscriptionForm
from reports.digests.models import Subscription, new_nonce
from reports.digests.tokens import InvalidToken, read_token


def get_subscription_or_404(user, pk: int) -> Subscription:
    """Only the owner's: someone else's subscription is as unknown as a missing one."""
    sub = Subscription.objects.filter(pk=pk, user=user).first()
    if sub is None:
        raise Http404(f"You have no subscription {pk}.")
    return sub


@viewer_required
def subscriptions(request):
    subs = Subscription.objects.filter(user=request.user).order_by("id")
    return render(request, "digests/subscriptions.html", {
        "subscriptions": subs,
        "mail_configured": sending.mail_configured(),
    })


@viewer_required
@require_http_methods(["GET", "POST"])
def add(request):
    form = SubscriptionForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        sub = form.save()
        messages.success(request, f"Subscription “{sub.label}” added: {sub.when_text()}.")
        return redirect("digests:list")
    return render(request, "digests/subscription_form.html", {"form": form, "sub": None})


@viewer_required
@require_http_methods(["GET", "POST"])
def edit(request, pk: int):
    sub = get_subscription_or_404(request.user, pk)
    form = SubscriptionForm(request.POST or None, instance=sub, user=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Subscription “{sub.label}” saved.")
        return redirect("digests:list")
    return render(request, "digests/subscription_form.html", {"form": form, "sub": sub})


@viewer_required
@require_http_methods(["GET", "POST"])
def delete(request, pk: int):
    sub = get_subscription_or_404(request.user, pk)
    if request.method == "GET":
        return render(request, "digests/subscription_delete.html", {"sub": sub})
    label = sub.label
    sub.delete()
    messages.success(request, f"Subscription “{label}” deleted.")
    return redirect("digests:list")


@viewer_required
@require_http_methods(["GET"])
def preview(request):
    """The HTML part of what the signed-in user would get now (nothing is recorded or sent)."""
    results = sending.preview(request.user.get_username())
    if not results:
        messages.info(request, "You have no active subscription to preview.")
        return redirect("digests:list")
    kind = request.GET.get("kind", "")
    _, _, (_, _, html) = next((r for r in results if r[0].kind == kind), results[0])
    return HttpResponse(html)


@never_cache
@csrf_exempt  # the signed token is the authorisation; mail clients' one-click POST carries no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    try:
        pairs = read_token(token)
    except InvalidToken:
        return render(request, "digests/unsubscribe.html", {"state": "invalid"}, status=400)
    valid = [
        s for s in Subscription.objects.filter(pk__in=[pk for pk, _ in pairs], active=True).select_related("user")
        if (s.pk, s.token_nonce) in set(pairs)
    ]
    if not valid:
        return render(request, "digests/unsubscribe.html", {"state": "used"}, status=410)
    if request.method == "GET":
        return render(request, "digests/unsubscribe.html", {"state": "confirm", "subscriptions": valid})
    done = []
    with transaction.atomic():
        for s in valid:
            # Conditional on the nonce: of two clicks racing, one unsubscribes and the other is "used".
            if Subscription.objects.filter(pk=s.pk, token_nonce=s.token_nonce, active=True).update(
                active=False, token_nonce=new_nonce()
            ):
                done.append(s)
    if not done:
        return render(request, "digests/unsubscribe.html", {"state": "used"}, status=410)
    return render(request, "digests/unsubscribe.html", {"state": "done", "subscriptions": done})
