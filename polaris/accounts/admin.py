from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Agency, ClientAgencyLink, User
from .services import client_home_link_ensure, user_audit, user_snapshot


class ClientAgencyLinkInline(admin.TabularInline):
    """A client's agencies, read-only here: links change through the API (each change is an event)."""

    model = ClientAgencyLink
    fk_name = "client"
    fields = ("agency", "created_at", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "role", "agency", "is_staff", "is_active")
    list_filter = ("role", "agency", "is_staff", "is_active")
    fieldsets = (*(BaseUserAdmin.fieldsets or ()), ("Polaris", {"fields": ("role", "agency")}))
    add_fieldsets = (*BaseUserAdmin.add_fieldsets, ("Polaris", {"fields": ("role", "agency")}))
    # Admin rights follow the role (User.save): shown, not edited.
    readonly_fields = ("is_staff", "is_superuser")
    inlines = (ClientAgencyLinkInline,)

    def save_model(self, request, obj, form, change) -> None:
        # Role and access changes are recorded in the audit log, in the admin's transaction.
        before = user_snapshot(User.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        client_home_link_ensure(client=obj, actor=request.user)
        user_audit(user=obj, before=before, actor=request.user)
