"""Admin for automation: triggers (ordered, enable/disable, dry-run, backtest), executions, timers,
alerts, webhooks."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path

from outbox.models import OutboxEvent
from polaris.admin_tools import ReadOnlyAdmin, form_errors_add, form_value
from polaris.errors import DomainError

from .alerts import alerts_acknowledge
from .backtest import trigger_backtest
from .dry_run import trigger_dry_run
from .models import (
    Alert,
    Trigger,
    TriggerExecution,
    TriggerTimer,
)
from .rules import trigger_validate
from .selectors import event_get
from .services import (
    trigger_admin_saved,
    trigger_delete,
    trigger_snapshot,
    trigger_version_bump,
    triggers_set_enabled,
)
from .timers import timers_resnapshot


class TriggerAdminForm(forms.ModelForm):
    """Runs the trigger rules (the model does not), on the change form and on the list's editable rows."""

    class Meta:
        model = Trigger
        fields = (
            "name",
            "description",
            "event_type",
            "predicate",
            "actions",
            "position",
            "enabled",
            "agency",
            "wait_minutes",
            "wait_calendar",
            "unless",
        )

    def clean(self) -> dict:
        data = super().clean() or {}
        if "unless" in data and data["unless"] is None:
            data["unless"] = []
        form_errors_add(
            self,
            trigger_validate(
                event_type=form_value(self, "event_type"),
                predicate=form_value(self, "predicate"),
                actions=form_value(self, "actions"),
                wait_minutes=form_value(self, "wait_minutes"),
                unless=form_value(self, "unless"),
            ),
        )
        return data


class DryRunForm(forms.Form):
    event_id = forms.UUIDField(required=False, help_text="A stored event (see Workflow → Outbox events).")
    event = forms.JSONField(
        required=False,
        help_text='Or an event body, e.g. {"event_type": "TaskStateChanged", "payload": {"task_type": '
        '"intake", "new_state": "completed", "title": "Intake"}}',
        widget=forms.Textarea(attrs={"rows": 6, "cols": 90}),
    )

    def clean(self) -> dict:
        data = super().clean() or {}
        if bool(data.get("event_id")) == bool(data.get("event")):
            raise forms.ValidationError("Give exactly one of an event id or an event body.")
        return data


class BacktestForm(forms.Form):
    since = forms.DateTimeField(help_text="ISO date-time, e.g. 2026-11-01T00:00:00Z")
    until = forms.DateTimeField()

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            raise forms.ValidationError("until must be after since.")
        return data


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    form = TriggerAdminForm
    list_display = ("position", "name", "event_type", "predicate", "wait_minutes", "enabled", "version")
    list_display_links = ("name",)
    list_editable = ("position", "enabled")
    list_filter = ("enabled", "event_type", "agency")
    search_fields = ("name", "description", "predicate")
    ordering = ("position", "id")
    readonly_fields = ("version", "created_at", "updated_at")

    def save_model(self, request: HttpRequest, obj: Trigger, form, change: bool) -> None:
        before = trigger_snapshot(Trigger.objects.get(pk=obj.pk)) if change else None
        if change:
            trigger_version_bump(trigger=obj)
        super().save_model(request, obj, form, change)
        if change and "unless" in form.changed_data:
            timers_resnapshot(trigger=obj)
        trigger_admin_saved(trigger=obj, before=before, actor=request.user)

    def delete_model(self, request: HttpRequest, obj: Trigger) -> None:
        trigger_delete(trigger_id=obj.pk, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Trigger]) -> None:
        for trigger_id in queryset.values_list("pk", flat=True):
            trigger_delete(trigger_id=trigger_id, actor=request.user)

    actions = ("enable", "disable", "dry_run_latest")
    change_form_template = "admin/automation/trigger/change_form.html"

    def get_changelist_form(self, request: HttpRequest, **kwargs):
        # The list's editable rows (position, enabled) are validated by the same rules as the change form.
        return super().get_changelist_form(request, form=TriggerAdminForm, **kwargs)

    def get_urls(self):
        dry_run = path(
            "<int:trigger_id>/dry-run/",
            self.admin_site.admin_view(self.dry_run_view),
            name="automation_trigger_dry_run",
        )
        backtest = path(
            "<int:trigger_id>/backtest/",
            self.admin_site.admin_view(self.backtest_view),
            name="automation_trigger_backtest",
        )
        return [dry_run, backtest, *super().get_urls()]

    def backtest_view(self, request: HttpRequest, trigger_id: int) -> HttpResponse:
        """A form: a period in, the backtest answer out (writes nothing)."""
        trigger = get_object_or_404(Trigger, pk=trigger_id)
        if not self.has_view_permission(request, trigger):
            raise PermissionDenied
        form = BacktestForm(request.POST or None)
        answer = None
        if request.method == "POST" and form.is_valid():
            try:
                answer = trigger_backtest(trigger=trigger, **form.cleaned_data)
            except DomainError as exc:
                form.add_error(
                    None, f"{exc.message} {json.dumps(exc.details) if exc.details else ''}".strip()
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Backtest: {trigger.name}",
            "trigger": trigger,
            "form": form,
            "answer": answer,
            "answer_json": json.dumps(answer, indent=2, default=str) if answer else "",
        }
        return TemplateResponse(request, "admin/automation/trigger/backtest.html", context)

    def dry_run_view(self, request: HttpRequest, trigger_id: int) -> HttpResponse:
        """A form: event id or body in, the dry-run answer out (writes nothing)."""
        trigger = get_object_or_404(Trigger, pk=trigger_id)
        if not self.has_view_permission(request, trigger):
            raise PermissionDenied
        form = DryRunForm(request.POST or None)
        answer = None
        if request.method == "POST" and form.is_valid():
            try:
                if form.cleaned_data.get("event_id"):
                    event = event_get(event_id=form.cleaned_data["event_id"])
                    answer = trigger_dry_run(trigger=trigger, event=event)
                else:
                    answer = trigger_dry_run(trigger=trigger, event_body=form.cleaned_data["event"])
            except DomainError as exc:
                form.add_error(
                    None, f"{exc.message} {json.dumps(exc.details) if exc.details else ''}".strip()
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Dry-run: {trigger.name}",
            "trigger": trigger,
            "form": form,
            "answer": answer,
            "answer_json": json.dumps(answer, indent=2, default=str) if answer else "",
        }
        return TemplateResponse(request, "admin/automation/trigger/dry_run.html", context)

    @admin.action(description="Enable selected triggers")
    def enable(self, request: HttpRequest, queryset: QuerySet[Trigger]) -> None:
        count = triggers_set_enabled(
            trigger_ids=list(queryset.values_list("pk", flat=True)), enabled=True, actor=request.user
        )
        self.message_user(request, f"Enabled {count} trigger(s).")

    @admin.action(description="Disable selected triggers")
    def disable(self, request: HttpRequest, queryset: QuerySet[Trigger]) -> None:
        count = triggers_set_enabled(
            trigger_ids=list(queryset.values_list("pk", flat=True)), enabled=False, actor=request.user
        )
        self.message_user(request, f"Disabled {count} trigger(s).")

    @admin.action(description="Dry-run against the latest event of each trigger's type (writes nothing)")
    def dry_run_latest(self, request: HttpRequest, queryset: QuerySet[Trigger]) -> None:
        for trigger in queryset:
            event = OutboxEvent.objects.filter(event_type=trigger.event_type).order_by("-occurred_at").first()
            if event is None:
                self.message_user(
                    request, f"{trigger.name}: no {trigger.event_type} event yet.", level=messages.WARNING
                )
                continue
            answer = trigger_dry_run(trigger=trigger, event=event)
            if answer["matched"] and not answer["loop_prevented"]:
                summary = f"matches; would run {json.dumps(answer['actions'])}"
            elif answer["loop_prevented"]:
                summary = "matches, but the event is at the maximum depth: loop prevented"
            else:
                summary = f"does not match; failed clause: {answer['failed_clause'] or answer['error']}"
            self.message_user(request, f"{trigger.name} on event {event.id}: {summary}")


@admin.register(TriggerTimer)
class TriggerTimerAdmin(ReadOnlyAdmin):
    list_display = ("due_at", "trigger", "trigger_version", "state", "aggregate_type", "task", "fired_at")
    list_filter = ("state", "trigger", ("task", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("trigger", "task")
    raw_id_fields = ("event", "cancelled_by", "task")
    ordering = ("-due_at",)


@admin.register(TriggerExecution)
class TriggerExecutionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "trigger_label", "trigger_version", "event", "outcome", "duration_ms")
    list_filter = ("outcome", "trigger")

    @admin.display(description="trigger")
    def trigger_label(self, execution: TriggerExecution) -> str:
        if execution.trigger is not None:
            return str(execution.trigger)
        return f"{execution.trigger_name} (deleted)"

    search_fields = ("event__id", "error")
    list_select_related = ("trigger", "event")
    raw_id_fields = ("event",)


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "severity", "message", "agency", "acknowledged_at", "acknowledged_by")
    list_filter = ("severity", ("acknowledged_at", admin.EmptyFieldListFilter), "agency")
    search_fields = ("message",)
    list_select_related = ("agency", "acknowledged_by")
    readonly_fields = (
        "severity",
        "message",
        "agency",
        "event",
        "trigger",
        "created_at",
        "acknowledged_at",
        "acknowledged_by",
    )
    actions = ("acknowledge",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # alerts are raised by automation, acknowledged here

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        count = alerts_acknowledge(
            alert_ids=list(queryset.values_list("pk", flat=True)),
            actor=request.user,  # type: ignore[arg-type]
        )
        self.message_user(request, f"Acknowledged {count} alert(s).")


# The webhook models' admin lives beside the webhooks (registered on import).
from .webhooks import admin as _webhooks_admin  # noqa: E402, F401
