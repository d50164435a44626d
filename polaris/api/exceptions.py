"""One error envelope for every API error: ``{success, error_code, message, details}``."""

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflow.errors import DomainError

DOMAIN_STATUS = {
    "INVALID_TRANSITION": status.HTTP_400_BAD_REQUEST,
    "GUARD_FAILED": status.HTTP_400_BAD_REQUEST,
    "VALIDATION_ERROR": status.HTTP_400_BAD_REQUEST,
    "PERMISSION_DENIED": status.HTTP_403_FORBIDDEN,
    "NOT_FOUND": status.HTTP_404_NOT_FOUND,
    "CONCURRENT_MODIFICATION": status.HTTP_409_CONFLICT,
    "CONFLICT": status.HTTP_409_CONFLICT,
}

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


def error_response(*, status_code: int, error_code: str, message: str, details: Any = None) -> Response:
    return Response(
        {"success": False, "error_code": error_code, "message": message, "details": details or {}},
        status=status_code,
    )


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return error_response(
            status_code=DOMAIN_STATUS.get(exc.error_code, status.HTTP_400_BAD_REQUEST),
            error_code=exc.error_code,
            message=exc.message,
            details=exc.details,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    error_code = next((code for cls, code in DRF_CODES if isinstance(exc, cls)), "ERROR")
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = "The input is not valid."
    else:
        details = {}
        message = str(getattr(exc, "detail", exc))
    response.data = {"success": False, "error_code": error_code, "message": message, "details": details}
    return response
