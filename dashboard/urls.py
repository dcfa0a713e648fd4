from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

import dashboard.ids  # noqa: F401  (registers the <id:...> and <pk:...> path converters)
from dashboard import api
from dashboard.views import (
    actions,
    attention,
    audit,
    insight,
    jobs,
    overview,
    production,
    proposals,
    transformation,
)
from dashboard.views.health import health
from dashboard.views.policy import policy_page

KIND = "<str:kind>"

api_patterns = [
    path("transformations/", api.Transformations.as_view(), name="api_transformations"),
    path("transformations/<id:tid>/", api.Transformation.as_view(), name="api_transformation"),
    path("transformations/<id:tid>/report/", api.Report.as_view(), name="api_report"),
    re_path(r"^transformations/(?P<tid>[0-9]{1,10})/report\.(?P<fmt>csv|json)$", api.ReportDownload.as_view(),
            name="api_report_download"),
    path("transformations/<id:tid>/insight/", insight.TransformationInsight.as_view(),
         name="api_transformation_insight"),
    path("productions/<id:pid>/insight/", insight.ProductionInsight.as_view(), name="api_production_insight"),
    path("attention/", api.AttentionItems.as_view(), name="api_attention"),
    path("actions/", api.Actions.as_view(), name="api_actions"),
    path("proposals/", api.Proposals.as_view(), name="api_proposals"),
    path("openapi.json", api.OpenApi.as_view(), name="api_openapi"),
]

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("overview/table/", overview.overview_table, name="overview_table"),
    path("attention/", attention.attention_list, name="attention"),
    path("transformations/<id:tid>/", transformation.transformation, name="transformation"),
    path("transformations/<id:tid>/jobs/", jobs.transformation_jobs, name="transformation_jobs"),
    path("transformations/<id:tid>/files/", transformation.transformation_files, name="transformation_files"),
    path("transformations/<id:tid>/acknowledge/", transformation.acknowledge, name="acknowledge"),
    path("productions/", production.productions, name="productions"),
    path("productions/<id:pid>/", production.production, name="production"),
    path(f"actions/{KIND}/", actions.action, name="action"),
    path(f"actions/{KIND}/done/<str:key>/", actions.action_result, name="action_result"),
    path(f"actions/{KIND}/done/<str:key>/progress/", actions.action_progress, name="action_progress"),
    path("proposals/", proposals.proposals, name="proposals"),
    path("proposals/decide/", proposals.decide, name="proposals_decide"),
    path("proposals/approved/<str:key>/", proposals.approval_result, name="approval_result"),
    path("proposals/approved/<str:key>/progress/", proposals.approval_progress, name="approval_progress"),
    path("audit/", audit.audit, name="audit"),
    path("audit/<pk:pk>/", audit.audit_entry, name="audit_entry"),
    path("audit.csv", audit.audit_csv, name="audit_csv"),
    path("audit/policy/<pk:pk>/", audit.policy_change, name="audit_policy_change"),
    path("policy/", policy_page, name="policy"),
    path("policy/<pk:pk>/", policy_page, name="policy_edit"),
    path("api/", include(api_patterns)),
    # The API's description for people (outside api/: the schema describes only the JSON endpoints).
    path("api/docs/", api.swagger_page, name="api_docs"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("digests/", include("reports.digests.urls")),
]

handler404 = "dashboard.views.errors.not_found"
