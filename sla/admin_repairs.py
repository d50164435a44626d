"""Admin pages for SLA repairs: the list of repairs, and a form to preview a change and apply it.

The form is turned into the API's body and validated by the API's own serializer
(``sla.api.repair_serializers``), so the admin and the API accept exactly the same repairs; the preview and
the application are the same services (``sla.repair``, ``sla.repair_apply``), which audit the change.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from polaris.accounts.models import User
from polaris.admin_tools import ReadOnlyAdmin
from polaris.errors import DomainError

from .api.repair_serializers import SLARepairInputSerializer
from .models import BusinessCalendar, SLAConfig, SLARepair
from .repair import RepairKind, sla_repair_preview
from .repair_apply import sla_repair_create

SAMPLE = 20
KIND_CHOICES = [
    (RepairKind.CONFIG_TARGET, "A config's target"),
    (RepairKind.CONFIG_CALENDAR, "A config's calendar"),
    (RepairKind.CALENDAR_HOURS, "A calendar's working hours"),
    (RepairKind.CALENDAR_HOLIDAYS, "A calendar's holidays"),
    (RepairKind.RECOMPUTE, "Re-measure under the current policy"),
]


class RepairForm(forms.Form):
    kind = forms.ChoiceField(choices=KIND_CHOICES)
    config = forms.ModelChoiceField(SLAConfig.objects.all(), required=False)
    target_minutes = forms.IntegerField(required=False, min_value=1, max_value=10_000_000)
    calendar = forms.ModelChoiceField(
        BusinessCalendar.objects.all(), required=False, help_text="Empty with a config's calendar: 24x7."
    )
    hours = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON: {"mon": [["09:00", "17:00"]], …}',
    )
    holidays = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), help_text="ISO dates, one per line."
    )
    closed_from = forms.DateTimeField(required=False, help_text="Also records closed from … (UTC)")
    closed_to = forms.DateTimeField(required=False, help_text="… until (at most 366 days)")

    def body(self) -> dict[str, Any]:
        """The API body this form stands for (validated by the API's serializer)."""
        data, kind = self.cleaned_data, self.cleaned_data["kind"]
        body: dict[str, Any] = {}
        if kind == RepairKind.RECOMPUTE:
            body["recompute"] = True
        if kind in (RepairKind.CONFIG_TARGET, RepairKind.CONFIG_CALENDAR) and data["config"]:
            body["config"] = data["config"].pk
        if kind == RepairKind.CONFIG_TARGET and data["target_minutes"]:
            body["target_minutes"] = data["target_minutes"]
        if kind == RepairKind.CONFIG_CALENDAR or (kind != RepairKind.RECOMPUTE and data["calendar"]):
            body["calendar"] = data["calendar"].pk if data["calendar"] else None  # none: 24x7
        if kind == RepairKind.CALENDAR_HOURS:
            try:
                body["hours"] = json.loads(data["hours"] or "null")
            except ValueError:
                body["hours"] = data["hours"]
        if kind == RepairKind.CALENDAR_HOLIDAYS:
            body["holidays"] = [line.strip() for line in data["holidays"].splitlines() if line.strip()]
        if data["closed_from"] or data["closed_to"]:
            body["scope"] = {
                "closed_from": data["closed_from"].isoformat() if data["closed_from"] else None,
                "closed_to": data["closed_to"].isoformat() if data["closed_to"] else None,
            }
        return body


@admin.register(SLARepair)
class SLARepairAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "state",
        "change",
        "total",
        "changed",
        "newly_breached",
        "no_longer_breached",
        "created_at",
    )
    list_filter = ("state",)
    change_list_template = "admin/sla/slarepair/change_list.html"

    def get_urls(self):
        preview = path(
            "preview/", self.admin_site.admin_view(self.preview_view), name="sla_slarepair_preview"
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest) -> HttpResponse:
        """Choose a change, see its totals and a sample of records (writes nothing); apply it."""
        if not self.has_view_permission(request):  # the admin site admits admins only; this keeps it so
            raise PermissionDenied
        form = RepairForm(request.POST or None)
        preview, body = None, None
        if request.method == "POST" and form.is_valid():
            body = form.body()
            serializer = SLARepairInputSerializer(data=body)
            if not serializer.is_valid():
                for field, problems in serializer.errors.items():
                    form.add_error(None, f"{field}: {json.dumps(problems)}")
            else:
                data = serializer.validated_data
                admin_user = cast(User, request.user)  # the admin site admits signed-in admins only
                try:
                    if "apply" in request.POST:
                        repair = sla_repair_create(
                            actor=admin_user, proposal=data["proposal"], scope=data["repair_scope"]
                        )
                        self.message_user(
                            request,
                            f"Repair {repair.pk} started for {repair.total} records.",
                            messages.SUCCESS,
                        )
                        return HttpResponseRedirect(reverse("admin:sla_slarepair_changelist"))
                    preview = sla_repair_preview(
                        actor=admin_user,
                        proposal=data["proposal"],
                        scope=data["repair_scope"],
                        limit=SAMPLE,
                    )
                except DomainError as exc:
                    form.add_error(
                        None, f"{exc.message} {json.dumps(exc.details) if exc.details else ''}".strip()
                    )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Preview an SLA repair",
            "form": form,
            "preview": preview,
            "totals": vars(preview.totals) if preview else None,
        }
        return TemplateResponse(request, "admin/sla/slarepair/preview.html", context)
