"""Shared pieces of the automation API: the managers' permission and common schema responses."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import BasePermission

from polaris.access import is_admin, is_supervisor

FORBIDDEN = OpenApiResponse(description="PERMISSION_DENIED")
NOT_FOUND = OpenApiResponse(description="NOT_FOUND")


class IsAdminRole(BasePermission):
    message = "Only admins may manage automation."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and is_admin(request.user))


class IsManager(BasePermission):
    """Admins, and supervisors (who manage their own agency's configuration: the views scope them)."""

    message = "Only administrators and supervisors may manage automation."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (is_admin(user) or is_supervisor(user)))
