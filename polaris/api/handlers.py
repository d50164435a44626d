"""Django-level error views that keep the API's envelope for ``/api/`` paths.

A URL that matches no route never reaches DRF, so its 404 would be Django's HTML page. Wire these in the
root URLconf (``handler404 = "polaris.api.handlers.not_found"``, ``handler500 = …server_error``); other
paths keep Django's default pages. An outage raised outside DRF (in middleware, the admin, any page) is a
503 with ``Retry-After`` on every path, never Django's 500 page.
"""

import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from polaris.api.exceptions import error_body
from polaris.api.outages import OUTAGE_ERROR_CODE, OUTAGE_MESSAGE, is_outage, outage_parts


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body(error_code="NOT_FOUND", message="Not found."), status=404)
    return defaults.page_not_found(request, exception)


def _outage_response(request: HttpRequest) -> HttpResponse:
    details, headers = outage_parts()
    if _is_api(request):
        body = error_body(error_code=OUTAGE_ERROR_CODE, message=OUTAGE_MESSAGE, details=details)
        return JsonResponse(body, status=503, headers=headers)
    return HttpResponse(OUTAGE_MESSAGE, status=503, content_type="text/plain", headers=headers)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this from inside its ``except`` block, so the exception is still at hand.
    exc = sys.exc_info()[1]
    if exc is not None and is_outage(exc):
        return _outage_response(request)
    if _is_api(request):
        body = error_body(error_code="INTERNAL_ERROR", message="An unexpected error occurred.")
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
