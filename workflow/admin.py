"""Admin for tasks, action plans and the outbox.

Writes go through the same services as the API (so every change writes its event and passes the
guards and permissions): rows are read-only here, and admin actions call the services, reporting
domain errors as messages. Tasks and plans are created through the API, not the admin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from polaris.accounts.models import User
from workflow.dispatch.services import outbox_event_replay
from workflow.errors import DomainError
from workflow.models import ActionPlan, ActionPlanState, HandledEvent, OutboxEvent, Task, TaskState
from workflow.services.action_plans import action_plan_transition
from workflow.services.tasks import task_transition


def _run_for_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    call: Callable[[Any], Any],
    done: str,
) -> None:
    """Call ``call(obj)`` per selected row; one success message, one error message per refusal."""
    succeeded = 0
    for obj in queryset:
        try:
            call(obj)
        except DomainError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message} ({exc.error_code})", level=messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        modeladmin.message_user(request, f"{succeeded} {done}.", level=messages.SUCCESS)


def _task_transition_action(target: str, name: str, description: str):
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        _run_for_each(
            modeladmin,
            request,
            queryset,
            lambda task: task_transition(
                task_id=task.pk, target_state=target, actor=cast(User, request.user)
            ),
            f"task(s) moved to {target}",
        )

    action.__name__ = name
    return admin.action(description=description)(action)


def _plan_transition_action(target: str, name: str, description: str):
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        _run_for_each(
            modeladmin,
            request,
            queryset,
            lambda plan: action_plan_transition(
                action_plan_id=plan.pk, target_state=target, actor=cast(User, request.user)
            ),
            f"plan(s) moved to {target}",
        )

    action.__name__ = name
    return admin.action(description=description)(action)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Every field read-only, no add, no delete: rows change through services only."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = (
        "title",
        "state",
        "priority",
        "task_type",
        "agency",
        "client",
        "assignee",
        "due_at",
        "created_at",
    )
    list_filter = ("state", "priority", "task_type", "service_area", "agency")
    search_fields = ("=id", "title", "client__username", "assignee__username")
    list_select_related = ("agency", "client", "assignee")
    date_hierarchy = "created_at"
    actions = (
        _task_transition_action(TaskState.IN_PROGRESS, "start_or_resume", "Start / resume selected tasks"),
        _task_transition_action(TaskState.COMPLETED, "complete", "Complete selected tasks"),
        _task_transition_action(TaskState.CANCELLED, "cancel", "Cancel selected tasks"),
    )


@admin.register(ActionPlan)
class ActionPlanAdmin(ReadOnlyAdmin):
    list_display = ("title", "state", "agency", "client", "created_at")
    list_filter = ("state", "agency")
    search_fields = ("=id", "title", "client__username")
    list_select_related = ("agency", "client")
    actions = (
        _plan_transition_action(ActionPlanState.ACTIVE, "activate", "Activate selected plans"),
        _plan_transition_action(ActionPlanState.ARCHIVED, "archive", "Archive selected plans"),
    )


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = (
        "event_type",
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "status",
        "attempts",
        "occurred_at",
        "next_attempt_at",
        "dispatched_at",
    )
    list_filter = ("status", "event_type", "aggregate_type")
    search_fields = ("=id", "=aggregate_id", "=correlation_id")
    ordering = ("-occurred_at",)
    # The table is also the event history: skip the unfiltered COUNT(*) on every page.
    show_full_result_count = False
    actions = ("replay",)

    @admin.action(description="Replay selected dead events")
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        _run_for_each(
            self,
            request,
            queryset,
            lambda event: outbox_event_replay(event_id=event.pk, actor=cast(User, request.user)),
            "event(s) queued for replay",
        )


@admin.register(HandledEvent)
class HandledEventAdmin(ReadOnlyAdmin):
    list_display = ("handler", "event", "handled_at")
    list_filter = ("handler",)
    search_fields = ("=event__id",)
    list_select_related = ("event",)
    show_full_result_count = False
