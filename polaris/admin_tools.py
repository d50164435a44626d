"""Admin building blocks every app's admin uses: view-only model admins and service-backed actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from polaris.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin):
    """View-only rows (no add, change or delete, so no Save buttons): they change through services only,
    through admin actions or the API."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def run_for_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    call: Callable[[Any], Any],
    done: str,
) -> None:
    """Call ``call(obj)`` per selected row; one success message, one error message per refusal."""
    succeeded = 0
    for obj in queryset:
        try:
            call(obj)
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message} ({exc.error_code})", level=messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{succeeded} {done}.", level=messages.SUCCESS)
