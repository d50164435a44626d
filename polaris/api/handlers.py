"""Django-level pieces that keep the API's envelope for every ``/api/`` answer, DEBUG on or off.

A URL that matches no route, a non-integer id on an ``<int:…>`` route, a CSRF failure or a crash outside a
DRF view never reach DRF's exception handler, and with DEBUG on Django answers them with its HTML debug
pages (``handler404``/``handler500`` are not consulted then). So:

- ``ApiEnvelopeMiddleware`` (near the top of ``MIDDLEWARE``) turns any ``/api/`` error answer that is not
  JSON into the envelope with the same status and the headers a client needs (``Allow``, ``Retry-After``…);
  an exception that escapes a view becomes a logged ``500 INTERNAL_ERROR`` envelope.
- ``CommonMiddleware`` is Django's, except that an unsafe request to an ``/api/`` path without its slash is
  a 404 envelope rather than a redirect (which would lose the body; with DEBUG on Django raises instead).
- ``not_found``/``server_error`` (``handler404``/``handler500``) and ``csrf_failure`` (``CSRF_FAILURE_VIEW``)
  answer with the envelope for ``/api/`` paths; other paths keep Django's pages (admin stays HTML).
  An outage raised outside DRF (in middleware, the admin, any page) is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.common import CommonMiddleware as DjangoCommonMiddleware
from django.views import csrf, defaults

from polaris.api.exceptions import error_body
from polaris.api.outages import OUTAGE_ERROR_CODE, OUTAGE_MESSAGE, is_outage, outage_parts

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"

STATUS_CODES = {
    400: ("VALIDATION_ERROR", "The request is not valid."),
    401: ("NOT_AUTHENTICATED", "Authentication credentials were not provided or are not valid."),
    403: ("PERMISSION_DENIED", "You do not have permission to perform this action."),
    404: ("NOT_FOUND", "Not found."),
    405: ("METHOD_NOT_ALLOWED", "This method is not allowed here."),
    406: ("NOT_ACCEPTABLE", "No representation matches the Accept header; ask for application/json."),
    413: ("REQUEST_TOO_LARGE", "The request body is too large."),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Send application/json."),
    429: ("THROTTLED", "Request was throttled."),
    500: ("INTERNAL_ERROR", "An unexpected error occurred."),
}
# Headers of the original answer that still mean something on the envelope.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "X-Correlation-ID", "Vary")


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX) or request.path == API_PREFIX.rstrip("/")


def envelope_response(status_code: int, *, message: str | None = None) -> JsonResponse:
    error_code, default_message = STATUS_CODES.get(
        status_code,
        ("INTERNAL_ERROR" if status_code >= 500 else "ERROR", "The request could not be completed."),
    )
    body = error_body(error_code=error_code, message=message or default_message)
    return JsonResponse(body, status=status_code)


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip() == "application/json"


class ApiEnvelopeMiddleware:
    """Every ``/api/`` error answer is the JSON envelope; other paths pass through untouched."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_api(request) or response.status_code < 400 or _is_json(response):
            return response
        replacement = envelope_response(response.status_code)
        for header in KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api(request):
            return None
        logger.exception("Unhandled error answering %s %s", request.method, request.path)
        return envelope_response(500)


class CommonMiddleware(DjangoCommonMiddleware):
    """Django's, minus the trailing-slash redirect for unsafe ``/api/`` requests (a redirect drops the
    body, and with DEBUG on Django raises a RuntimeError for it): those get the 404 envelope."""

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if is_api(request) and request.method not in ("GET", "HEAD"):
            return False
        return super().should_redirect_with_slash(request)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return envelope_response(404)
    return defaults.page_not_found(request, exception)


def _outage_response(request: HttpRequest) -> HttpResponse:
    details, headers = outage_parts()
    if is_api(request):
        body = error_body(error_code=OUTAGE_ERROR_CODE, message=OUTAGE_MESSAGE, details=details)
        return JsonResponse(body, status=503, headers=headers)
    return HttpResponse(OUTAGE_MESSAGE, status=503, content_type="text/plain", headers=headers)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this from inside its ``except`` block, so the exception is still at hand.
    exc = sys.exc_info()[1]
    if exc is not None and is_outage(exc):
        return _outage_response(request)
    if is_api(request):
        return envelope_response(500)
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A session-authenticated unsafe request without its CSRF token (the API's JWT clients need none)."""
    if is_api(request):
        return envelope_response(403, message=f"CSRF check failed: {reason}")
    return csrf.csrf_failure(request, reason)
