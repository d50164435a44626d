"""The root URLconf: admin, authentication and the API documents, then each app's routes, included by name.

Every app owns its URL module; this one only mounts them (``include()`` with a dotted string, so the ground
imports no app). Order matters where prefixes are shared: the operations routes come last.
"""

from django.contrib import admin
from django.urls import include, path

from polaris.api.docs_views import SchemaView, SwaggerDocsView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/", include("polaris.api.auth_urls")),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SwaggerDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/workflow/", include("workflow.api.urls")),
    path("api/workflow/", include("outbox.api.urls")),
    path("api/workflow/", include("sla.api.urls")),
    path("api/workflow/", include("routing.api.urls")),
    path("api/workflow/", include("automation.api.urls")),
    path("api/workflow/", include("careplans.api.urls")),
    path("api/workflow/", include("polaris.audit.api.urls")),
    path("api/workflow/", include("reports.api.urls")),
    # /api/workflow/stats, /healthz, /readyz, /metrics.
    path("", include("ops.urls")),
]

# Unrouted /api/ paths (and crashes) answer with the error envelope; other paths keep Django's pages.
handler404 = "polaris.api.handlers.not_found"
handler500 = "polaris.api.handlers.server_error"
