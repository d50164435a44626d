"""Shared pieces of the routing API: the managers' permission and the schema's error responses."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import BasePermission

from polaris.access import is_admin, is_supervisor

FORBIDDEN = OpenApiResponse(description="PERMISSION_DENIED")
NOT_FOUND = OpenApiResponse(description="NOT_FOUND")
VALIDATION = OpenApiResponse(description="VALIDATION_ERROR")


class IsManager(BasePermission):
    """Admins, and supervisors (who manage their own agency's routing: the selectors scope them)."""

    message = "Only administrators and supervisors may manage routing."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (is_admin(user) or is_supervisor(user)))
