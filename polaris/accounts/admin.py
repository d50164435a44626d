from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import Agency, User


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
