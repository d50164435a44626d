"""The admin login lockout (django-axes): only the admin site's logins count, and a lockout is a 429 with
``Retry-After``.

The API's token endpoint has its own limits (``polaris.api.throttling``, in the API's error envelope), so
axes records nothing for it: its handler here ignores every request outside the admin site. Without that,
axes would count API failures too and answer a locked-out API login with its own page.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse


class AdminLockoutHandler(AxesDatabaseHandler):
    """axes' database handler, for admin site requests only (``AXES_ONLY_ADMIN_SITE`` covers the check
    before a login; this covers the bookkeeping after it)."""

    def user_login_failed(self, sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
        if request is None or not self.is_admin_request(request):
            return None
        return super().user_login_failed(sender, credentials, request, **kwargs)

    def user_logged_in(self, sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        if request is None or not self.is_admin_request(request):
            return None
        return super().user_logged_in(sender, request, user, **kwargs)


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429, ``Retry-After`` the cool-off, the same words whoever is locked out."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 3600
    response = HttpResponse(
        f"Too many failed login attempts. Try again in {max(seconds // 60, 1)} minute(s).\n",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(seconds)
    return response
