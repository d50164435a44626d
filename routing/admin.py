"""Admin for routing: the rules and profiles to read (changes go through the audited API), and the workload
page a supervisor works from: every figure a link to the task list it counts.

A supervisor (admitted by the site for their agency, ``polaris.accounts.admin_site``) reaches the workload
page of their own agency only (another agency's ``?agency=`` is 404) and their agency's worker loads;
rules and profiles stay the admins'."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from polaris.accounts.admin_site import SupervisorAgencyAdmin, site_supervisor
from polaris.accounts.models import Agency

from .decide import OPEN_STATES
from .models import RoutingRule, WorkerLoad, WorkerProfile
from .workload import workload

OPEN = ",".join(OPEN_STATES)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Changes go through the API's services, which audit them; the admin shows the rows."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RoutingRule)
class RoutingRuleAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "agency",
        "order",
        "enabled",
        "strategy",
        "use_skills",
        "client_affinity",
        "capacity",
    )
    list_filter = ("agency", "enabled", "strategy")


@admin.register(WorkerProfile)
class WorkerProfileAdmin(ReadOnlyAdmin):
    list_display = ("user", "away", "delegate", "capacity", "service_areas", "task_types")
    list_filter = ("away",)


def task_list_url(**filters: Any) -> str:
    """The task changelist filtered like a figure (lookups the task admin accepts: local fields and the
    assignee's id)."""
    return f"{reverse('admin:workflow_task_changelist')}?{urlencode(filters)}"


def workload_links(data: dict[str, Any], agency: Agency) -> dict[str, Any]:
    """Each figure of ``data`` with the URL of the tasks it counts."""
    base = {"agency__id__exact": agency.pk, "state__in": OPEN}
    for row in data["workers"]:
        mine = {**base, "assignee__id__exact": row["user"]}
        row["open_url"] = task_list_url(**mine)
        row["overdue_url"] = task_list_url(**mine, overdue="yes")
        row["at_risk_url"] = task_list_url(**mine, sla_status="at_risk")  # the API's one at-risk rule
    data["unassigned_url"] = task_list_url(**base, assignee__isnull="True")
    for row in data["service_areas"]:
        area = {**base, "service_area": row["service_area"]}
        row["open_url"] = task_list_url(**area)
        row["unassigned_url"] = task_list_url(**area, assignee__isnull="True")
        row["overdue_url"] = task_list_url(**area, overdue="yes")
    return data


@admin.register(WorkerLoad)
class WorkerLoadAdmin(SupervisorAgencyAdmin, ReadOnlyAdmin):
    list_display = ("user", "agency", "open_tasks", "weighted_load")
    list_filter = ("agency",)

    def get_urls(self):
        page = path("workload/", self.admin_site.admin_view(self.workload_view), name="routing_workload")
        return [page, *super().get_urls()]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkerLoad]:
        supervisor = site_supervisor(request)
        rows = super().get_queryset(request)
        return rows if supervisor is None else rows.filter(agency_id=supervisor.agency_id)

    def get_list_filter(self, request: HttpRequest) -> Any:
        return () if site_supervisor(request) is not None else self.list_filter

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str) -> Any:
        raise Http404("Not found.")

    def workload_view(self, request: HttpRequest) -> HttpResponse:
        """The agency's workload (``?agency=``; the first agency by name when none is chosen). A
        supervisor's is their own agency's: another agency (or a malformed id) is 404."""
        supervisor = site_supervisor(request)
        chosen = request.GET.get("agency")
        if supervisor is not None:
            if chosen is not None and chosen != str(supervisor.agency_id):
                raise Http404("Agency not found.")
            agencies = list(Agency.objects.filter(pk=supervisor.agency_id))
        else:
            agencies = list(Agency.objects.order_by("name")[:500])
        agency = next((a for a in agencies if str(a.pk) == chosen), agencies[0] if agencies else None)
        data = workload_links(workload(agency=agency), agency) if agency is not None else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Workload: {agency}" if agency else "Workload",
            "agencies": agencies,
            "agency": agency,
            "data": data,
        }
        return TemplateResponse(request, "admin/routing/workload.html", context)
