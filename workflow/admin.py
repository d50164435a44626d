"""Admin for tasks and action plans.

Writes go through the same services as the API (so every change writes its event and passes the
guards and permissions): rows are read-only here, and admin actions call the services, reporting
domain errors as messages. Tasks and plans are created through the API, not the admin.
"""

from __future__ import annotations

from typing import cast

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from polaris.accounts.models import User
from polaris.admin_tools import ReadOnlyAdmin, run_for_each
from workflow.models import ActionPlan, ActionPlanState, Task, TaskState
from workflow.services.action_plans import action_plan_transition
from workflow.services.tasks import task_transition


def _task_transition_action(target: str, name: str, description: str):
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
        run_for_each(
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
        run_for_each(
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
