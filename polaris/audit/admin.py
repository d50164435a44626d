"""The audit log in admin: a read-only changelist with filters (no add, change or delete)."""

from django.contrib import admin

from polaris.admin_tools import ReadOnlyAdmin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_username", "agency", "action", "object_type", "object_id", "correlation_id")
    list_filter = ("action", "object_type", "agency", ("at", admin.DateFieldListFilter))
    search_fields = ("actor_username", "object_id", "correlation_id", "action")
    date_hierarchy = "at"
    list_select_related = ("agency",)
    readonly_fields = (
        "at",
        "actor",
        "actor_username",
        "agency",
        "action",
        "object_type",
        "object_id",
        "before",
        "after",
        "correlation_id",
    )
