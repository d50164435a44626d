"""The root URLconf: the top floor, which wires every app's API together with the operations views."""

from django.contrib import admin
from django.urls import include, path, re_path

from polaris.api.docs_views import SchemaView, SwaggerDocsView

from . import health, metrics, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/", include("polaris.api.auth_urls")),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SwaggerDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/workflow/", include("workflow.api.urls")),
    path("api/workflow/", include("outbox.api.urls")),
    path("api/workflow/", include("sla.api.urls")),
    path("api/workflow/", include("automation.api.urls")),
    re_path(r"^api/workflow/stats/?$", views.WorkflowStatsView.as_view(), name="workflow-stats"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="prometheus-metrics"),
]

# Unrouted /api/ paths (and crashes) answer with the error envelope; other paths keep Django's pages.
handler404 = "polaris.api.handlers.not_found"
handler500 = "polaris.api.handlers.server_error"
