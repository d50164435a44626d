"""Django-level error views that keep the API's envelope for ``/api/`` paths.

A URL that matches no route never reaches DRF, so its 404 would be Django's HTML page. Wire these in the
root URLconf (``handler404 = "polaris.api.handlers.not_found"``, ``handler500 = …server_error``); other
paths keep Django's default pages.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from polaris.api.exceptions import error_body


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body(error_code="NOT_FOUND", message="Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        body = error_body(error_code="INTERNAL_ERROR", message="An unexpected error occurred.")
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
