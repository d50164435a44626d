from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/", include("polaris.api.auth_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/workflow/", include("workflow.api.urls")),
    path("api/workflow/", include("workflow.api.dispatch_urls")),
    path("api/workflow/", include("sla.urls")),
    path("api/workflow/", include("automation.api.urls")),
    path("", include("polaris.ops.urls")),
]

# Unrouted /api/ paths (and crashes) answer with the error envelope; other paths keep Django's pages.
handler404 = "polaris.api.handlers.not_found"
handler500 = "polaris.api.handlers.server_error"
