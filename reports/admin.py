"""The admin's trend page (*Reports > Trends*): the four reports over a window, as server-drawn SVG charts
with a table of the same figures under each; linked from the operations dashboard."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from polaris.errors import DomainError

from .charts import trend_charts
from .models import Rollup
from .selectors import REPORT_FUNCTIONS, ReportFilters
from .window import window_make

DEFAULT_DAYS = 30


def _query(request: HttpRequest) -> dict[str, str]:
    today = timezone.now().date()
    get = request.GET
    return {
        "from": get.get("from") or str(today - timedelta(days=DEFAULT_DAYS - 1)),
        "to": get.get("to") or str(today),
        "bucket": get.get("bucket") or "day",
        "tz": get.get("tz") or "UTC",
        "agency": get.get("agency") or "",
        "service_area": (get.get("service_area") or "")[:64],
        "task_type": (get.get("task_type") or "")[:64],
    }


def trends_context(query: dict[str, str]) -> dict[str, Any]:
    """The charts and tables for ``query`` (the page's form), or the error to show instead."""
    from datetime import date
    from uuid import UUID

    try:
        try:
            first, last = date.fromisoformat(query["from"]), date.fromisoformat(query["to"])
            agency = UUID(query["agency"]) if query["agency"] else None
        except ValueError as exc:
            raise DomainError(f"Not a valid date or agency id: {exc}") from None
        window = window_make(first=first, last=last, unit=query["bucket"], tz=query["tz"])
    except DomainError as exc:
        return {"error": exc.message, "details": exc.details}
    filters = ReportFilters(
        agency_id=agency, service_area=query["service_area"] or None, task_type=query["task_type"] or None
    )
    reports = {name: func(window=window, filters=filters) for name, func in REPORT_FUNCTIONS.items()}
    return {"charts": trend_charts(reports), "reports": reports, "window": window}


@admin.register(Rollup)
class TrendsAdmin(admin.ModelAdmin):
    """The rollups' admin entry is the trend page itself (rows are not edited by hand)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Every agency's figures: the admin role's (the site also admits supervisors, to their own pages).
        if not self.has_view_permission(request):
            raise PermissionDenied
        query = _query(request)
        context = {
            **self.admin_site.each_context(request),
            "title": "Trends",
            "query": query,
            "bucket_units": ("day", "week"),
            **trends_context(query),
        }
        return TemplateResponse(request, "reports/trends.html", context)
