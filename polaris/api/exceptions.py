"""One error envelope for every API error: ``{success, error_code, message, details}``.

Domain errors (``polaris.errors.DomainError``) answer with the status their class carries
(``status_code``), so this module names no app's error codes; DRF's own errors
(validation, parsing, authentication, 404, 405, 406, 415, throttling) get the same envelope, and an
unexpected exception becomes a logged ``500 INTERNAL_ERROR`` envelope rather than an HTML page — unless it
says the database or the broker is unavailable (``polaris.api.outages``): that is ``503 SERVICE_UNAVAILABLE``
with ``Retry-After``.
"""

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from polaris.api.outages import OUTAGE_ERROR_CODE, OUTAGE_MESSAGE, is_outage, outage_parts
from polaris.errors import DomainError

logger = logging.getLogger(__name__)


def domain_status(error: DomainError | type[DomainError]) -> int:
    """The HTTP status a domain error (an instance or a class) is answered with: its family's, or its own."""
    return error.status_code


def domain_error_classes(root: type[DomainError] = DomainError) -> Iterator[type[DomainError]]:
    """Every subclass of ``root`` imported so far, depth first."""
    for sub in root.__subclasses__():
        yield sub
        yield from domain_error_classes(sub)


class DomainStatuses(Mapping[str, int]):
    """``error_code`` -> status of every ``DomainError`` subclass imported when it is read (the error-code
    table of docs/architecture/workflow.md is rendered from it)."""

    def _table(self) -> dict[str, int]:
        return {cls.error_code: domain_status(cls) for cls in domain_error_classes()}

    def __getitem__(self, code: str) -> int:
        return self._table()[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


DOMAIN_STATUS: Mapping[str, int] = DomainStatuses()

DRF_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.ValidationError, "VALIDATION_ERROR"),
    (exceptions.ParseError, "VALIDATION_ERROR"),
    (exceptions.NotAuthenticated, "NOT_AUTHENTICATED"),
    (exceptions.AuthenticationFailed, "NOT_AUTHENTICATED"),
    (exceptions.PermissionDenied, "PERMISSION_DENIED"),
    (exceptions.NotFound, "NOT_FOUND"),
    (exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (exceptions.NotAcceptable, "NOT_ACCEPTABLE"),
    (exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (exceptions.Throttled, "THROTTLED"),
]


def error_body(*, error_code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"success": False, "error_code": error_code, "message": message, "details": details or {}}


def error_response(*, status_code: int, error_code: str, message: str, details: Any = None) -> Response:
    return Response(error_body(error_code=error_code, message=message, details=details), status=status_code)


def outage_response(exc: BaseException) -> Response:
    """503 with ``Retry-After``: the database or the broker is unavailable (``polaris.api.outages``)."""
    logger.warning("Service unavailable: %s", exc.__class__.__name__, exc_info=exc)
    details, headers = outage_parts()
    response = error_response(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        error_code=OUTAGE_ERROR_CODE,
        message=OUTAGE_MESSAGE,
        details=details,
    )
    for name, value in headers.items():
        response[name] = value
    return response


def _message_and_details(exc: exceptions.APIException) -> tuple[str, dict[str, Any]]:
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return "The input is not valid.", details
    if isinstance(exc, exceptions.Throttled):
        return str(exc.detail), {"wait_seconds": getattr(exc, "wait", None)}
    detail = exc.detail
    if isinstance(detail, dict):
        # simplejwt's InvalidToken carries {"detail", "code", "messages"}: keep the sentence as the
        # message and the rest as details.
        rest = {key: value for key, value in detail.items() if key != "detail"}
        return str(detail.get("detail", "The request could not be completed.")), rest
    if isinstance(detail, list):
        return "; ".join(str(item) for item in detail), {}
    return str(detail), {}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return error_response(
            status_code=domain_status(exc),
            error_code=exc.error_code,
            message=exc.message,
            details=exc.details,
        )
    if isinstance(exc, RequestDataTooBig):
        return error_response(
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            error_code="REQUEST_TOO_LARGE",
            message="The request body is too large.",
        )
    if isinstance(exc, SuspiciousOperation):
        # Django answers these with 400 outside DRF (too many fields, malformed multipart, …).
        return error_response(
            status_code=status.HTTP_400_BAD_REQUEST, error_code="VALIDATION_ERROR", message=str(exc)
        )
    if is_outage(exc):
        return outage_response(exc)
    # Django's own 404 and 403 (``get_object_or_404``, an unknown ``?format=``) carry no ``detail``:
    # turn them into DRF's equivalents first, so the envelope below can read one.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        # A bug, not a client error: log it with its traceback and keep the contract's shape.
        logger.exception("Unhandled error in API view %s", context.get("view").__class__.__name__)
        return error_response(
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            error_code="INTERNAL_ERROR",
            message="An unexpected error occurred.",
        )
    error_code = next((code for cls, code in DRF_CODES if isinstance(exc, cls)), "ERROR")
    message, details = _message_and_details(exc)  # type: ignore[arg-type]
    response.data = error_body(error_code=error_code, message=message, details=details)
    return response
