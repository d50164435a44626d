"""The admin site: the admin role's console, and a supervisor's read-mostly view of their own agency,
both decided from the role at every request.

``is_staff``/``is_superuser`` follow the role on every save (``User.save``), but a flag is only as fresh
as the row: a session opened before a demotion, a row written with ``update()``, a flag set by hand. The
site therefore asks the role itself, so an admin (or a supervisor) demoted to an agent is refused at their
next request.

A supervisor is admitted without ``is_staff`` and sees only what a model admin opens to them explicitly
(``site_supervisor``): the workload page of their agency and their agency's tasks. Every other model admin
relies on Django's model permissions, which confer nothing outside the admin role (``User.has_perm``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest


def is_site_admin(user: Any) -> bool:
    """The admin role, active, with the flags that role keeps (a stale flag opens nothing)."""
    return bool(user.is_active and user.is_staff and getattr(user, "is_admin_role", False))


def is_site_supervisor(user: Any) -> bool:
    """An active supervisor of an agency: admitted to their agency's pages only."""
    return bool(
        user.is_active and getattr(user, "is_supervisor_role", False) and getattr(user, "agency_id", None)
    )


def site_supervisor(request: HttpRequest) -> Any:
    """The signed-in supervisor (the site's agency-scoped viewer), or ``None`` for anyone else."""
    user = request.user
    return user if is_site_supervisor(user) else None


def admin_viewable(request: HttpRequest, model: Any) -> bool:
    """Whether ``request``'s user may open ``model``'s admin pages: a page draws no link to one closed to
    its viewer (a supervisor's task page names the client, not the user admin's page)."""
    if not admin.site.is_registered(model):
        return False
    return admin.site.get_model_admin(model).has_view_permission(request)


class SupervisorAgencyAdmin(admin.ModelAdmin):
    """A model admin a supervisor also uses, for their own agency's rows (``agency_id``): listed on their
    index and viewable; put it before the admin's other bases. Anyone else gets the base's permissions."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return site_supervisor(request) is not None or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        supervisor = site_supervisor(request)
        if supervisor is None:
            return super().has_view_permission(request, obj)
        return obj is None or obj.agency_id == supervisor.agency_id


class PolarisAdminSite(admin.AdminSite):
    @property
    def login_form(self) -> Any:  # type: ignore[override]
        # Imported here: this module is loaded with the app registry (``PolarisAdminConfig``), before the
        # auth forms may be.
        from .admin_login import RoleAuthenticationForm

        return RoleAuthenticationForm

    def admits(self, user: Any) -> bool:
        """The admin role, or a supervisor of an agency (to their agency's pages): asked at every request
        and by the login form."""
        return is_site_admin(user) or is_site_supervisor(user)

    def has_permission(self, request: HttpRequest) -> bool:
        return self.admits(request.user)


class PolarisAdminConfig(AdminConfig):
    """Replaces ``django.contrib.admin`` in ``INSTALLED_APPS``: ``admin.site`` is a ``PolarisAdminSite``."""

    default_site = "polaris.accounts.admin_site.PolarisAdminSite"
