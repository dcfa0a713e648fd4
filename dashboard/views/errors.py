"""Error pages: a message in words for the user, never a traceback."""

from __future__ import annotations

from django.shortcuts import render
from django.urls import Resolver404


def not_found(request, exception=None):
    # Our own 404s carry a sentence for the user; the URL resolver's carry internals.
    message = ""
    if exception is not None and not isinstance(exception, Resolver404) and exception.args:
        if isinstance(exception.args[0], str):
            message = exception.args[0]
    return render(request, "404.html", {"exception": message, "request_path": request.path}, status=404)
