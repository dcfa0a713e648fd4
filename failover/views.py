"""``/health/``: whether the parts of the system answer. Open without login, for monitors."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from failover.health import as_json, run_checks


@never_cache
@require_GET
def health(request):
    # Pinging workers costs up to a couple of seconds; monitors may skip it with ?workers=0.
    checks = run_checks(workers=request.GET.get("workers", "1") != "0")
    data = as_json(checks)
    return JsonResponse(data, status=200 if data["ok"] else 503)
