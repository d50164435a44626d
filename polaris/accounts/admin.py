from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Agency, User
from .services import user_audit, user_snapshot


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

    def save_model(self, request, obj, form, change) -> None:
        # Role and access changes are recorded in the audit log, in the admin's transaction.
        before = user_snapshot(User.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        user_audit(user=obj, before=before, actor=request.user)
