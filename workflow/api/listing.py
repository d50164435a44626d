"""Query-string handling and the filtered, ordered querysets behind the list endpoints.

They build on the scoped selectors (``task_queryset``/``action_plan_queryset``), so a filter can only
narrow what the caller may see. Known parameters are validated by a serializer; parameters other apps
registered in ``extensions.task_filters`` are handed to them; anything else is a 400, so a misspelt
filter never silently returns everything.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from rest_framework import serializers
from rest_framework.request import Request

from polaris.accounts.models import User
from polaris.errors import NotFound, ValidationFailed
from workflow import selectors
from workflow.api import extensions
from workflow.models import ActionPlan, Task, TaskPriority

# Parameters DRF itself understands (renderer choice); accepted everywhere.
PASSTHROUGH_PARAMS = frozenset({"format"})

_PRIORITY_RANK = Case(
    *(When(priority=value, then=Value(rank)) for rank, value in enumerate(TaskPriority.values)),
    default=Value(len(TaskPriority.values)),
    output_field=IntegerField(),
)


def query_params_parse(
    *,
    request: Request,
    serializer_class: type[serializers.Serializer],
    extension_filters: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate the query string: (validated known params, raw values of extension params)."""
    extension_filters = extension_filters or {}
    serializer = serializer_class(data=request.query_params)
    known = set(serializer.fields)
    errors: dict[str, list[str]] = {}
    extension_values: dict[str, str] = {}
    for name, values in request.query_params.lists():
        if any("\x00" in value for value in values):
            errors[name] = ["Null characters are not allowed."]
        elif name in extension_filters and name not in known:
            extension_values[name] = values[-1]
        elif name not in known and name not in PASSTHROUGH_PARAMS:
            errors[name] = ["Unknown query parameter."]
    if not serializer.is_valid():
        errors.update(serializer.errors)
    if errors:
        raise ValidationFailed(details=errors)
    return dict(serializer.validated_data), extension_values


def _with_hooks(queryset: QuerySet[Task]) -> QuerySet[Task]:
    for hook in extensions.task_queryset_hooks:
        queryset = hook(queryset)
    return queryset


def task_list(
    *, user: User, filters: Mapping[str, Any], extension_filters: Mapping[str, str] | None = None
) -> QuerySet[Task]:
    """The caller's tasks, filtered and in a stable order (the sort key, then ``id``)."""
    tasks = selectors.task_queryset(user=user)
    for name in ("state", "task_type", "service_area", "priority", "action_plan"):
        if name in filters:
            tasks = tasks.filter(**{name: filters[name]})
    for name in ("assignee", "client"):
        if name in filters:
            tasks = tasks.filter(**{f"{name}_id": filters[name]})
    if "created_after" in filters:
        tasks = tasks.filter(created_at__gte=filters["created_after"])
    if "created_before" in filters:
        tasks = tasks.filter(created_at__lt=filters["created_before"])
    for name, value in (extension_filters or {}).items():
        tasks = extensions.task_filters[name](tasks, value)

    ordering = filters.get("ordering", "-created_at")
    descending, key = ordering.startswith("-"), ordering.lstrip("-")
    if key == "priority":
        tasks = tasks.annotate(priority_rank=_PRIORITY_RANK)
        key = "priority_rank"
    expression = F(key).desc(nulls_last=True) if descending else F(key).asc(nulls_last=True)
    return _with_hooks(tasks.order_by(expression, "id"))


def task_detail(*, user: User, task_id: Any) -> Task:
    """One task in the caller's scope, with the extensions' prefetches; ``NotFound`` otherwise."""
    try:
        return _with_hooks(selectors.task_queryset(user=user)).get(pk=uuid.UUID(str(task_id)))
    except (ValueError, Task.DoesNotExist):
        raise NotFound("Task not found.") from None


def action_plan_list(*, user: User, filters: Mapping[str, Any]) -> QuerySet[ActionPlan]:
    """The caller's plans, filtered, newest first (ties break on ``id``)."""
    plans = selectors.action_plan_queryset(user=user)
    if "state" in filters:
        plans = plans.filter(state=filters["state"])
    if "client" in filters:
        plans = plans.filter(client_id=filters["client"])
    # The has_tasks guard behind available_transitions reads the prefetched tasks.
    return plans.prefetch_related("tasks").order_by("-created_at", "id")
