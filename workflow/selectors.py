"""Reads, scoped to what the caller may see: admins everything, agency agents their agency, clients their own.

An object outside the caller's scope is indistinguishable from an absent one (``NotFound``).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from polaris.accounts.models import User

from .errors import NotFound
from .machines import transitions_of
from .models import ActionPlan, OutboxEvent, Task


def _scoped(queryset: QuerySet, user: User | None) -> QuerySet:
    if user is None or user.role == User.Role.ADMIN:
        return queryset
    if user.role == User.Role.AGENCY:
        return queryset.filter(agency_id=user.agency_id)
    return queryset.filter(client_id=user.pk)


def task_queryset(*, user: User | None) -> QuerySet[Task]:
    return _scoped(Task.objects.all(), user)


def action_plan_queryset(*, user: User | None) -> QuerySet[ActionPlan]:
    return _scoped(ActionPlan.objects.all(), user)


def _get(queryset: QuerySet, object_id: Any, label: str):
    try:
        return queryset.get(pk=uuid.UUID(str(object_id)))
    except (ValueError, TypeError, queryset.model.DoesNotExist):
        raise NotFound(f"{label} not found.") from None


def task_get(*, user: User | None, task_id: Any) -> Task:
    return _get(task_queryset(user=user), task_id, "Task")


def action_plan_get(*, user: User | None, action_plan_id: Any) -> ActionPlan:
    return _get(action_plan_queryset(user=user), action_plan_id, "Action plan")


def aggregate_events(*, aggregate_type: str, aggregate_id: Any) -> QuerySet[OutboxEvent]:
    """An aggregate's event history, in stream order."""
    return OutboxEvent.objects.filter(aggregate_type=aggregate_type, aggregate_id=aggregate_id).order_by(
        "sequence"
    )


def task_events(*, user: User | None, task_id: Any) -> QuerySet[OutboxEvent]:
    task = task_get(user=user, task_id=task_id)
    return aggregate_events(aggregate_type=Task.aggregate_type, aggregate_id=task.pk)


def available_targets(*, instance: Task | ActionPlan, user: User | None) -> list[str]:
    """Target states ``user`` may move ``instance`` to right now (edges, guards and permissions applied)."""
    targets = []
    for transition in transitions_of(type(instance)):
        if transition.source != instance.state:
            continue
        if user is not None and not transition.has_perm(instance, user):
            continue
        if all(condition(instance) for condition in transition.conditions):
            targets.append(str(transition.target))
    return targets
