"""The admin site, open to the admin role only, checked at every request.

``is_staff``/``is_superuser`` follow the role on every save (``User.save``), but a flag is only as fresh
as the row: a session opened before a demotion, a row written with ``update()``, a flag set by hand. The
site therefore asks the role itself, so an admin demoted to an agency role is refused at their next
request.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest


class PolarisAdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and getattr(user, "is_admin_role", False))


class PolarisAdminConfig(AdminConfig):
    """Replaces ``django.contrib.admin`` in ``INSTALLED_APPS``: ``admin.site`` is a ``PolarisAdminSite``."""

    default_site = "polaris.accounts.admin_site.PolarisAdminSite"
