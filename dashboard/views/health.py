"""``/health/``: whether the parts of the system answer. Open without login, for people and monitors.

HTML for a browser; JSON for ``Accept: application/json`` or ``?format=json``. Either way the
status is 200 when every check is healthy and 503 otherwise, so a monitor needs only the code.
Every check reads the database or a local folder (workers and beat from their heartbeats), so
the page answers at once; ``?workers=0`` leaves out the worker check.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from failover.health import as_json, run_checks


def wants_json(request) -> bool:
    fmt = request.GET.get("format")
    if fmt in ("json", "html"):
        return fmt == "json"
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


@never_cache
@require_GET
def health(request):
    checks = run_checks(workers=request.GET.get("workers", "1") != "0")
    data = as_json(checks)
    status = 200 if data["ok"] else 503
    if wants_json(request):
        response = JsonResponse(data, status=status)
    else:
        response = render(request, "health.html", {"checks": checks, "ok": data["ok"]}, status=status)
    response["Vary"] = "Accept"
    # A 503 here is the answer, not a server error: polled every second, Django's "Service
    # Unavailable" error line would flood the log (the failing checks are in the answer itself).
    response._has_been_logged = True
    return response
