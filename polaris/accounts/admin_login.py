"""The admin login form, by role: the site admits admins and agency supervisors
(``polaris.accounts.admin_site``), not ``is_staff``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError


class RoleAuthenticationForm(AdminAuthenticationForm):
    """Admins and supervisors sign in (Django's form asks for ``is_staff``, which supervisors lack); anyone
    else gets the same answer as a wrong password, so the form tells nobody which accounts exist."""

    def confirm_login_allowed(self, user: Any) -> None:
        AuthenticationForm.confirm_login_allowed(self, user)
        if not admin.site.admits(user):  # type: ignore[attr-defined]
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )
