"""Reads, scoped to what the caller may see: admins everything, agency agents their agency, clients their own.

An object outside the caller's scope is indistinguishable from an absent one (``NotFound``).
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from django.db.models import QuerySet

from polaris.access import scope_filter
from polaris.accounts.models import User
from polaris.errors import NotFound
from polaris.precompiled import row_get

from .machines import transitions_of
from .models import ActionPlan, OutboxEvent, Task

M = TypeVar("M", Task, ActionPlan)


def _scoped(queryset: QuerySet, user: User | None) -> QuerySet:
    return queryset.filter(**scope_filter(user))


def task_queryset(*, user: User | None) -> QuerySet[Task]:
    return _scoped(Task.objects.all(), user)


def action_plan_queryset(*, user: User | None) -> QuerySet[ActionPlan]:
    return _scoped(ActionPlan.objects.all(), user)


def _get(model: type[M], user: User | None, object_id: Any, label: str) -> M:
    try:
        pk = uuid.UUID(str(object_id))
    except (ValueError, TypeError):
        raise NotFound(f"{label} not found.") from None
    # Precompiled: every transition starts here (polaris.precompiled).
    instance = row_get(model, where={"id": pk, **scope_filter(user)})
    if instance is None:
        raise NotFound(f"{label} not found.")
    return instance


def task_get(*, user: User | None, task_id: Any) -> Task:
    return _get(Task, user, task_id, "Task")


def action_plan_get(*, user: User | None, action_plan_id: Any) -> ActionPlan:
    return _get(ActionPlan, user, action_plan_id, "Action plan")


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
