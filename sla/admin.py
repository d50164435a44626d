from django.contrib import admin, messages
from django.utils import timezone

from polaris.errors import ValidationFailed

from . import admin_repairs  # noqa: F401  (registers the repair pages)
from .configs import business_calendar_holidays_fill, sla_admin_delete, sla_admin_saved, sla_admin_snapshot
from .models import BusinessCalendar, SLAConfig, SLARecord


class AuditedAdmin(admin.ModelAdmin):
    """Saves and deletes are recorded in the audit log (``sla.configs``), in the save's transaction."""

    def save_model(self, request, obj, form, change) -> None:
        before = sla_admin_snapshot(obj) if change else None
        super().save_model(request, obj, form, change)
        sla_admin_saved(obj=obj, before=before, actor=request.user)

    def delete_model(self, request, obj) -> None:
        sla_admin_delete(obj=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            sla_admin_delete(obj=obj, actor=request.user)


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(AuditedAdmin):
    list_display = ("name", "time_zone", "country_code", "subdivision", "updated_at")
    search_fields = ("name",)
    actions = ("fill_country_holidays",)

    @admin.action(description="Fill holidays from the country code (this year and next)")
    def fill_country_holidays(self, request, queryset) -> None:
        year = timezone.now().year
        for calendar in queryset:
            try:
                added = business_calendar_holidays_fill(
                    calendar=calendar, years=[year, year + 1], actor=request.user
                )
            except ValidationFailed as exc:
                self.message_user(request, f"{calendar}: {exc.details}", level=messages.ERROR)
            else:
                self.message_user(request, f"{calendar}: {added} holidays added.")


@admin.register(SLAConfig)
class SLAConfigAdmin(AuditedAdmin):
    # ModelForm validation calls SLAConfig.clean(), so ties and bad percentages show on the form.
    list_display = ("name", "service_area", "task_type", "target_minutes", "calendar", "active")
    list_filter = ("active", "service_area", "task_type")
    search_fields = ("name", "service_area", "task_type")
    autocomplete_fields = ("calendar",)


@admin.register(SLARecord)
class SLARecordAdmin(admin.ModelAdmin):
    """Read-only: records change only through task transitions and the scan."""

    list_display = ("task", "config", "status", "started_at", "due_at", "breached_at", "stopped_at")
    list_filter = ("status", "config")
    list_select_related = ("task", "config")
    search_fields = ("=id", "=task__id", "task__title")
    date_hierarchy = "due_at"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
