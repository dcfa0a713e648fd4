"""The API's access and error rules, apart from its views so that DRF's settings can import them
early: authentication (Basic, token, session), the viewer permission, throttles, JSON always,
and the one error shape ``{"error": ...}``."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.http import Http404
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from dashboard.models import ApiToken
from dashboard.roles import can_view
from failover.errors import FailoverError

REALM = "failover dashboard"
NOT_SIGNED_IN = "authentication required: sign in, or use a token or HTTP Basic with a dashboard account"
NO_ROLE = "your account has no role: ask an administrator"


class ApiError(exceptions.APIException):
    """An answer ``{"error": message, **extra}`` with a status: the API's one error shape."""

    def __init__(self, status: int, message: str, **extra):
        self.status_code, self.message, self.extra = status, message, extra
        super().__init__(message)


def _fields(errors) -> dict[str, list[str]]:
    return {k: [str(e) for e in v] for k, v in errors.items()}


def exception_handler(exc, context):
    """Every error as ``{"error": ...}`` (with ``fields`` for invalid parameters), as before DRF."""
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        status, body = exc.status_code, {"error": exc.message, **exc.extra}
    elif isinstance(exc, Http404):
        status, body = 404, {"error": str(exc)}
    elif isinstance(exc, FailoverError):  # DIRAC or the aggregate store could not be read
        status, body = 502, {"error": f"could not be read: {exc}"}
    elif isinstance(exc, exceptions.NotAuthenticated):
        status, body = exc.status_code, {"error": NOT_SIGNED_IN}
    elif isinstance(exc, exceptions.MethodNotAllowed):
        status, body = 405, {"error": f"{context['request'].method} is not allowed here: the API is read-only"}
    elif isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1)
        status, body = 429, {"error": f"too many requests: try again in {wait} s"}
        headers["Retry-After"] = str(wait)
    elif isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        status, body = 400, {"error": "invalid parameters", "fields": _fields(exc.detail)}
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else "; ".join(map(str, exc.detail))
        status, body = exc.status_code, {"error": str(detail)}
    else:
        return None  # a bug: Django's 500
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    if status == 405:
        headers["Allow"] = "GET, HEAD"
    return Response(body, status=status, headers=headers)


# -- authentication, permission, throttling, rendering --------------------------------------------


class BasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic with a dashboard account; failures count toward django-axes' login lock-out."""

    www_authenticate_realm = REALM

    def authenticate_credentials(self, userid, password, request=None):
        # The plain HttpRequest, as the login page gives it: axes marks a lock-out on it, and its
        # middleware turns the answer into a 429.
        user = authenticate(getattr(request, "_request", request), username=userid, password=password)
        if user is None:
            raise exceptions.AuthenticationFailed("wrong name or password")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("this account is disabled")
        return user, None


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token KEY``; only the key's SHA-256 is stored (``dashboard.models.ApiToken``)."""

    def authenticate_credentials(self, key):
        token = ApiToken.objects.select_related("user").filter(digest=ApiToken.digest_of(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("unknown token: make one with manage.py users token NAME")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("this account is disabled")
        return token.user, token


class SessionAuthentication(authentication.SessionAuthentication):
    """The browser's session (the pages' login)."""


class IsViewer(permissions.BasePermission):
    """A viewer, operator or administrator, as for the pages."""

    message = NO_ROLE

    def has_permission(self, request, view) -> bool:
        return can_view(request.user)


class _SettingsRate:
    """The rate from Django's settings at each request (API_THROTTLE_USER / _ANON), None: off."""

    setting = ""

    def get_rate(self):
        return getattr(settings, self.setting)


class AccountThrottle(_SettingsRate, throttling.UserRateThrottle):
    """Requests per signed-in account (per client address before sign-in is the next one)."""

    setting = "API_THROTTLE_USER"

    def allow_request(self, request, view):
        if not request.user.is_authenticated:
            return True
        return super().allow_request(request, view)


class AddressThrottle(_SettingsRate, throttling.AnonRateThrottle):
    """Requests without an account, per client address (the connection's, or FAILOVER_PROXY_COUNT's)."""

    setting = "API_THROTTLE_ANON"

    def get_ident(self, request):
        if settings.FAILOVER_PROXY_COUNT:
            forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
            if len(forwarded) >= settings.FAILOVER_PROXY_COUNT:
                return forwarded[-settings.FAILOVER_PROXY_COUNT]
        return request.META.get("REMOTE_ADDR", "")


class AlwaysJson(BaseContentNegotiation):
    """JSON whatever the Accept header says, as before: a script's ``Accept: text/csv`` gets JSON errors."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
