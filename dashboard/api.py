"""``/api/...``: JSON for what the pages show, with the pages' roles. Read-only. Django REST framework.

Authentication: a token (``Authorization: Token KEY``, ``manage.py users token NAME``), the
browser session, or HTTP Basic with a dashboard account's password (``curl -u name:password``;
off with ``API_BASIC_AUTH=false``). Anonymous requests get 401, accounts without a role 403.
Requests are throttled per account and per client address (429 with Retry-After). Input is
validated strictly: a bad filter is a 400 naming the field, never ignored. The OpenAPI
description is generated from this module (drf-spectacular) at ``/api/openapi.json``, shown by
Swagger UI at ``/api/docs/`` and Redoc at ``/api/redoc/``, both served from our static files.

The URLs, fields and errors are those of the hand-written API this replaced
(tests/test_api_contract.py pins them): scripts written against it keep working.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.paginator import EmptyPage, Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework import exceptions, permissions, serializers
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.api_access import ApiError, SessionAuthentication, _fields
from dashboard.filters import ActionLogFilter
from dashboard.forms import CycleForm, OverviewFilterForm
from dashboard.ids import BadNumber, parse_id, parse_optional_id
from dashboard.views.access import get_state_or_404, viewer_required
from dashboard.views.overview import filtered, sorted_qs
from failover import attention
from failover.errors import UnknownTransformation
from failover.models import ActionLog, Policy, TransformationState
from reports.aggregation import build_report, render_csv
from reports.live import live_report
from reports.stores import stored_aggregates

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


class PagePagination(BasePagination):
    """``?page=N&page_size=M`` (1 to 500, default 50): ``{"count", "page", "pages", "results"}``."""

    def paginate_queryset(self, queryset, request, view=None):
        try:
            size = parse_id(request.query_params.get("page_size", str(DEFAULT_PAGE_SIZE)), what="page_size")
            number = parse_id(request.query_params.get("page", "1"), what="page")
        except BadNumber as exc:
            raise ApiError(400, str(exc)) from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ApiError(400, f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        paginator = Paginator(queryset, size)
        try:
            self.page = paginator.page(number)
        except EmptyPage:
            raise ApiError(404, f"page {number} does not exist (there are {paginator.num_pages})") from None
        return list(self.page.object_list)

    def get_paginated_response(self, data):
        paginator = self.page.paginator
        return Response({"count": paginator.count, "page": self.page.number, "pages": paginator.num_pages,
                         "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["count", "page", "pages", "results"],
            "properties": {
                "count": {"type": "integer", "description": "rows in all pages"},
                "page": {"type": "integer"},
                "pages": {"type": "integer"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {"name": "page", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "default": 1}},
            {"name": "page_size", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE}},
        ]


class ReadOnlyView(APIView):
    """GET and HEAD only: any other method is a 405 before authentication, as before."""

    http_method_names = ["get", "head"]

    def initial(self, request, *args, **kwargs):
        if request.method.lower() not in self.http_method_names:
            raise exceptions.MethodNotAllowed(request.method)
        self.format_kwarg = self.get_format_suffix(**kwargs)
        neg = self.perform_content_negotiation(request)
        request.accepted_renderer, request.accepted_media_type = neg
        version, scheme = self.determine_version(request, *args, **kwargs)
        request.version, request.versioning_scheme = version, scheme
        self.perform_authentication(request)
        # Throttles before permissions, so requests without an account are counted too.
        self.check_throttles(request)
        self.check_permissions(request)


class PagedView(ReadOnlyView):
    pagination_class = PagePagination

    def page_of(self, queryset, serialize) -> Response:
        paginator = self.pagination_class()
        rows = paginator.paginate_queryset(queryset, self.request, self)
        return paginator.get_paginated_response(serialize(rows))


# -- serializers ----------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.DATETIME)
class DateTime(serializers.Field):
    """As Django's JSON encoder writes it (the old API's form): milliseconds, UTC as ``Z``."""

    def to_representation(self, value):
        return DjangoJSONEncoder().default(value)


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                   help_text="invalid parameters: the messages of each")


class AttentionItemSerializer(serializers.Serializer):
    transformation_id = serializers.IntegerField()
    code = serializers.ChoiceField(choices=list(attention.TITLES) + [attention.OTHER])
    text = serializers.CharField()
    count = serializers.IntegerField(allow_null=True)
    fix = serializers.CharField(allow_null=True, help_text="flush, reassign, complete, sync or approve: the button "
                                                           "that fixes it")
    title = serializers.CharField()
    since = DateTime(allow_null=True, help_text="when the condition began")
    details = serializers.DictField(allow_null=True, help_text="the numbers behind the text (by code)")


class TransformationSerializer(serializers.Serializer):
    """A transformation as the overview lists it; ``context["items"]``: its attention items by id."""

    id = serializers.IntegerField(source="transformation_id")
    name = serializers.CharField()
    type = serializers.CharField()
    status = serializers.CharField()
    production = serializers.IntegerField(source="production_id", allow_null=True)
    parent = serializers.IntegerField(source="parent_id", allow_null=True,
                                      help_text="-1: first step of its production")
    group_size = serializers.FloatField()
    files = serializers.DictField(child=serializers.IntegerField(), help_text="file status to count")
    files_total = serializers.IntegerField()
    files_processed = serializers.IntegerField()
    progress = serializers.FloatField(help_text="percent of files Processed")
    jobs = serializers.DictField(child=serializers.IntegerField(), help_text="job status to count (last cycle)")
    jobs_total = serializers.IntegerField()
    jobs_failed = serializers.IntegerField()
    failed_share = serializers.FloatField()
    reassigned_files = serializers.IntegerField()
    flush_count = serializers.IntegerField()
    last_action = serializers.CharField()
    last_action_at = DateTime(allow_null=True)
    last_cycle = serializers.IntegerField(source="last_cycle_id", allow_null=True)
    last_seen = DateTime(allow_null=True)
    attention = serializers.SerializerMethodField()

    @extend_schema_field(AttentionItemSerializer(many=True))
    def get_attention(self, state: TransformationState) -> list[dict]:
        items = self.context["items"].get(state.transformation_id, [])
        return AttentionItemSerializer([i.as_dict() for i in items], many=True).data


class ActionSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    created = DateTime()
    finished = DateTime(allow_null=True)
    transformation = serializers.IntegerField(source="transformation_id")
    kind = serializers.ChoiceField(choices=ActionLog.Kind.choices)
    state = serializers.ChoiceField(choices=ActionLog.State.choices)
    actor = serializers.CharField(help_text="a user name, or system")
    cycle = serializers.IntegerField(source="cycle_id", allow_null=True)
    reason = serializers.CharField()
    details = serializers.DictField(help_text="sync: task ids by new status; reassign: LFNs by task and the LFNs "
                                              "moved; flush/complete: status and expected")
    outcome = serializers.CharField()
    error = serializers.CharField()


class ReportRowSerializer(serializers.Serializer):
    application_status = serializers.CharField()
    site = serializers.CharField()
    count = serializers.IntegerField()


class ReportMinorSerializer(serializers.Serializer):
    minor_status = serializers.CharField()
    count = serializers.IntegerField()
    percent = serializers.FloatField(help_text="of its status")
    rows = ReportRowSerializer(many=True)


class ReportStatusSerializer(serializers.Serializer):
    status = serializers.CharField()
    count = serializers.IntegerField()
    percent = serializers.FloatField(help_text="of all jobs")
    minor_statuses = ReportMinorSerializer(many=True)


class ReportSerializer(serializers.Serializer):
    """The JSON of ``manage.py report ID --format json`` (reports.aggregation.Report.as_json)."""

    transformation = serializers.IntegerField()
    total = serializers.IntegerField()
    statuses = ReportStatusSerializer(many=True)


def _errors(*codes: int) -> dict:
    meaning = {400: "Invalid parameters", 401: "Not signed in: use a token, the session or HTTP Basic",
               403: "The account has no role", 404: "Unknown id, or no such page",
               429: "Too many requests: see Retry-After",
               502: "DIRAC (source=live) or the aggregate store could not be read"}
    return {code: OpenApiResponse(ErrorSerializer, description=meaning[code]) for code in (*codes, 401, 403, 429)}


def _query(name: str, type_, description: str = "", **kw) -> OpenApiParameter:
    return OpenApiParameter(name, type_, OpenApiParameter.QUERY, description=description, **kw)


REPORT_PARAMETERS = [
    _query("cycle", OpenApiTypes.INT, "the report stored by this cycle (a permalink); default: the latest"),
    _query("source", OpenApiTypes.STR, "stored aggregates (what the pages show) or DIRAC now "
           "(like `manage.py report ID`)", enum=["stored", "live"], default="stored"),
]
REPORT_HEADERS = [
    OpenApiParameter("X-Report-Cycle", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[200],
                     description="cycle that stored the aggregates (stored source)"),
    OpenApiParameter("X-Report-Time", OpenApiTypes.DATETIME, OpenApiParameter.HEADER, response=[200],
                     description="when that cycle stored them"),
]
TID = OpenApiParameter("tid", OpenApiTypes.INT, OpenApiParameter.PATH, description="transformation id")


# -- endpoints ------------------------------------------------------------------------------------


class Transformations(PagedView):
    @extend_schema(
        operation_id="listTransformations", summary="Transformations as the overview lists them",
        parameters=[
            _query("q", OpenApiTypes.STR, "id or part of the name"),
            _query("type", OpenApiTypes.STR), _query("status", OpenApiTypes.STR),
            _query("production", OpenApiTypes.INT),
            _query("attention", OpenApiTypes.BOOL, "only those needing attention"),
            _query("sort", OpenApiTypes.STR, "a column, or -column for descending",
                   enum=[v for v, _ in OverviewFilterForm.base_fields["sort"].choices if v]),
        ],
        responses={200: TransformationSerializer(many=True), **_errors(400, 404)},
    )
    def get(self, request):
        form = OverviewFilterForm(request.query_params)
        if not form.is_valid():
            raise ApiError(400, "invalid parameters", fields=_fields(form.errors))
        policy = Policy.current()
        qs = sorted_qs(filtered(form, policy), form.cleaned_data.get("sort") or "id", policy)

        def serialize(rows):
            return TransformationSerializer(rows, many=True, context={"items": attention.items_for(rows, policy)}).data

        return self.page_of(qs, serialize)


class Transformation(ReadOnlyView):
    @extend_schema(operation_id="getTransformation", summary="One transformation, with its last recovery check's "
                   "findings per case (`recovery`)", parameters=[TID],
                   responses={200: TransformationSerializer, **_errors(404)})
    def get(self, request, tid: int):
        state = get_state_or_404(tid)
        data = dict(TransformationSerializer(state, context={"items": attention.items_for([state])}).data)
        # The last recovery check's findings, per case (failover/cycle/recover.py).
        data["recovery"] = attention.recovery_cases(tid)
        return Response(data)


def _report(request, tid: int):
    """(report, cycle, timestamp): stored (latest or ``?cycle=N``) or, with ``?source=live``, from DIRAC."""
    source = request.query_params.get("source", "stored")
    if source not in ("stored", "live"):
        raise ApiError(400, "source is stored or live")
    form = CycleForm(request.query_params)
    if not form.is_valid():
        raise ApiError(400, "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
    cycle = form.cleaned_data.get("cycle")
    if source == "live":
        if cycle:
            raise ApiError(400, "cycle goes with source=stored")
        try:
            return live_report(tid), None, None
        except UnknownTransformation as exc:
            raise Http404(str(exc)) from None
    get_state_or_404(tid)
    snap = stored_aggregates(tid, cycle)
    if snap is None:
        raise Http404(f"transformation {tid} has no report stored" + (f" by cycle {cycle}" if cycle else " yet"))
    return build_report(tid, snap.rows), snap.cycle_id, snap.timestamp


def _with_report_headers(response, cycle, timestamp):
    if cycle is not None:
        response["X-Report-Cycle"] = str(cycle)
        response["X-Report-Time"] = timestamp.isoformat()
    return response


class Report(ReadOnlyView):
    @extend_schema(
        operation_id="getReport", summary="The job report: the JSON of `manage.py report ID --format json`",
        parameters=[TID, *REPORT_PARAMETERS, *REPORT_HEADERS],
        responses={200: ReportSerializer, **_errors(400, 404, 502)},
    )
    def get(self, request, tid: int):
        rep, cycle, timestamp = _report(request, tid)
        return _with_report_headers(Response(rep.as_json()), cycle, timestamp)


class ReportDownload(ReadOnlyView):
    """``report.csv`` and ``report.json``: one route; the schema shows them as two paths."""

    def get(self, request, tid: str, fmt: str):
        try:
            tid = parse_id(tid, what="transformation id")  # from a regular expression route: a string
        except BadNumber as exc:
            raise Http404(str(exc)) from None
        rep, cycle, timestamp = _report(request, tid)
        suffix = f"-cycle{cycle}" if cycle else ""
        if fmt == "csv":
            response = HttpResponse(render_csv(rep), content_type="text/csv; charset=utf-8")
        else:
            response = HttpResponse(json.dumps(rep.as_json(), indent=1), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="report-{tid}{suffix}.{fmt}"'
        return _with_report_headers(response, cycle, timestamp)


class ReportCsvDownload(ReportDownload):
    @extend_schema(
        operation_id="downloadReportCsv", summary="The report as a CSV download",
        description="attachment report-ID[-cycleN].csv; columns transformation, status, minor_status, "
                    "application_status, site, count",
        parameters=[TID, *REPORT_PARAMETERS, *REPORT_HEADERS],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="the CSV file"),
                   **_errors(400, 404, 502)},
    )
    def get(self, request, tid, fmt="csv"):
        return super().get(request, tid, fmt)


class ReportJsonDownload(ReportDownload):
    @extend_schema(
        operation_id="downloadReportJson", summary="The report as a JSON download",
        description="attachment report-ID[-cycleN].json",
        parameters=[TID, *REPORT_PARAMETERS, *REPORT_HEADERS],
        responses={200: ReportSerializer, **_errors(400, 404, 502)},
    )
    def get(self, request, tid, fmt="json"):
        return super().get(request, tid, fmt)


def expand_report_downloads(endpoints):
    """drf-spectacular's preprocessing hook: the one ``report.(csv|json)`` route as its two paths."""
    out = []
    for path, regex, method, callback in endpoints:
        if path.endswith("/report.{fmt}"):
            base = path[: -len("{fmt}")]
            out.append((base + "csv", regex, method, ReportCsvDownload.as_view()))
            out.append((base + "json", regex, method, ReportJsonDownload.as_view()))
        else:
            out.append((path, regex, method, callback))
    return out


class AttentionItems(PagedView):
    @extend_schema(
        operation_id="listAttention", summary="Attention items (the attention page)",
        description="Paginated by transformation: `count` and `pages` count transformations, `results` holds "
                    "every matching item of the page's transformations.",
        parameters=[
            _query("code", OpenApiTypes.STR, "repeatable", enum=list(attention.TITLES) + [attention.OTHER],
                   many=True, explode=True),
            _query("transformation", OpenApiTypes.INT),
        ],
        responses={200: AttentionItemSerializer(many=True), **_errors(400, 404)},
    )
    def get(self, request):
        codes = [c for c in request.query_params.getlist("code") if c]
        unknown = [c for c in codes if c not in attention.TITLES]
        if unknown:
            raise ApiError(400, f"unknown code {', '.join(unknown)}", codes=list(attention.TITLES))
        try:
            t = parse_optional_id(request.query_params.get("transformation"), what="transformation id")
        except BadNumber as exc:
            raise ApiError(400, str(exc), fields={"transformation": [str(exc)]}) from None
        policy = Policy.current()
        qs = attention.rows_needing_attention(policy, codes or None)
        if t is not None:
            qs = qs.filter(transformation_id=t)
        return self.page_of(qs, lambda rows: AttentionItemSerializer(
            [i.as_dict() for i in attention.items_of_rows(rows, policy, codes)], many=True).data)


class Actions(PagedView, GenericAPIView):
    """The action log, filtered by django-filter (dashboard/filters.py, shared with the audit page)."""

    filterset_class = ActionLogFilter
    queryset = ActionLog.objects.all()
    serializer_class = ActionSerializer

    @extend_schema(operation_id="listActions", summary="The action log (the audit page), newest first",
                   responses={200: ActionSerializer(many=True), **_errors(400, 404)})
    def get(self, request):
        # DjangoFilterBackend: an invalid filter is a ValidationError, a 400 naming its field.
        rows = self.filter_queryset(self.get_queryset())
        return self.page_of(rows, lambda page: ActionSerializer(page, many=True).data)


class Proposals(PagedView):
    @extend_schema(operation_id="listProposals", summary="Proposals waiting for an operator (propose mode), "
                   "oldest first", responses={200: ActionSerializer(many=True), **_errors(404)})
    def get(self, request):
        qs = ActionLog.objects.filter(state=ActionLog.State.PROPOSED).order_by("id")
        return self.page_of(qs, lambda rows: ActionSerializer(rows, many=True).data)


class BasicScheme(OpenApiAuthenticationExtension):
    target_class = "dashboard.api_access.BasicAuthentication"
    name = "basic"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic", "description": "a dashboard account's name and password "
                "(unless API_BASIC_AUTH is false); failures count toward the login lock-out"}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "dashboard.api_access.SessionAuthentication"
    name = "session"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME,
                "description": "the browser's session, after signing in on the login page"}


class OpenApiJson(OpenApiJsonRenderer):
    media_type = "application/json"  # as before; scripts read it as JSON


class OpenApi(ReadOnlyView, SpectacularJSONAPIView):
    """The API's description, generated from this module (login required like everything but /health/)."""

    http_method_names = ["get", "head"]
    renderer_classes = [OpenApiJson]
    authentication_classes = APIView.authentication_classes
    permission_classes = APIView.permission_classes
    throttle_classes = APIView.throttle_classes

    @extend_schema(operation_id="getOpenApi", summary="This description (OpenAPI 3.1)",
                   responses={(200, "application/json"): OpenApiResponse(
                       inline_serializer("OpenApiDocument", {"openapi": serializers.CharField()}),
                       description="the OpenAPI document"), **_errors()})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# -- the description for people: Swagger UI, its assets from our static files --------------------
# (Not Redoc: its bundle loads its logo from the vendor's CDN whatever the settings.)

# Nothing but this site may be loaded or asked by the page, whatever Swagger UI's settings say.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
_swagger = SpectacularSwaggerView.as_view(
    template_name="api/swagger.html", title="Failover Dashboard API", url_name="api_openapi",
    authentication_classes=[SessionAuthentication], permission_classes=[permissions.AllowAny], throttle_classes=[])


@viewer_required  # signed in with a role (else the login page, or the no-role 403 page), as for the pages
def swagger_page(request):
    response = _swagger(request)
    response["Content-Security-Policy"] = DOCS_CSP
    return response
