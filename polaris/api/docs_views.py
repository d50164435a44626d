"""The OpenAPI document and the Swagger UI, as the project serves them (``polaris.urls`` routes them).

Kept apart from ``polaris.api.schema``: drf-spectacular's views need ``DEFAULT_SCHEMA_CLASS`` (which lives
there) when their module is imported.
"""

from django.http import HttpResponse
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer


class JsonErrorsMixin:
    """The schema and docs views render YAML or HTML; their errors (405, an unknown ``?format=``) are
    the JSON envelope all the same, and OPTIONS answers with ``Allow`` alone."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return response

    def options(self, request, *args, **kwargs):
        response = HttpResponse(status=200)
        response["Allow"] = ", ".join(self.allowed_methods)
        return response


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    """``/api/schema/``: the OpenAPI document (YAML; ``?format=json`` for JSON)."""


class SwaggerDocsView(JsonErrorsMixin, SpectacularSwaggerView):
    """``/api/docs/``: Swagger UI from drf-spectacular-sidecar's static files (no CDN)."""
