"""Reads for routing: rules in the caller's scope, and what a decision reads (the matching rule, the agency's
workers with their counters, the client's worker) — a handful of indexed queries, never a count of tasks."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import QuerySet, Value

from polaris.access import manager_scope
from polaris.accounts.models import User
from polaris.errors import NotFound
from workflow.models import Task

from .decide import OPEN_STATES, Decision, RuleView, TaskView, Worker, decide
from .models import RoutingRule, WorkerProfile


def rule_queryset(*, user: User | None) -> QuerySet[RoutingRule]:
    """The rules ``user`` manages: an admin's every agency's, a supervisor's their agency's (others: 403)."""
    scope = manager_scope(user)
    rules = RoutingRule.objects.prefetch_related("candidates")
    return rules if scope is None else rules.filter(agency_id=scope)


def rule_list(*, user: User | None, agency_id: Any = None) -> QuerySet[RoutingRule]:
    rules = rule_queryset(user=user)
    return rules if agency_id is None else rules.filter(agency_id=agency_id)


def rule_get(*, user: User | None, rule_id: Any) -> RoutingRule:
    try:
        pk = uuid.UUID(str(rule_id))
    except (TypeError, ValueError):
        raise NotFound("Routing rule not found.") from None
    rule = rule_queryset(user=user).filter(pk=pk).first()
    if rule is None:
        raise NotFound("Routing rule not found.")
    return rule


def rule_view(rule: RoutingRule) -> RuleView:
    """What the decision needs of ``rule`` (its candidates read with it by ``rule_matching``)."""
    listed = getattr(rule, "candidate_ids", None)
    if listed is None:
        listed = rule.candidates.values_list("id", flat=True)
    candidate_ids = tuple(sorted(user_id for user_id in listed if user_id is not None))
    return RuleView(
        id=rule.pk,
        name=rule.name,
        strategy=rule.strategy,
        candidate_ids=candidate_ids,
        use_skills=rule.use_skills,
        client_affinity=rule.client_affinity,
        capacity=rule.capacity,
        last_assignee_id=rule.last_assignee_id,
    )


def rule_matching(task: Task) -> RoutingRule | None:
    """The first enabled rule of the task's agency, in ``order``, that matches the task, with its candidates'
    ids aggregated in the same query (``candidate_ids``)."""
    rules = (
        RoutingRule.objects.filter(agency_id=task.agency_id, enabled=True)
        .annotate(candidate_ids=ArrayAgg("candidates__id", default=Value([])))
        .order_by("order", "created_at", "id")
    )
    for rule in rules:
        if rule.matches(task_type=task.task_type, service_area=task.service_area, priority=task.priority):
            return rule
    return None


WORKER_COLUMNS = (
    "id",
    "username",
    "role",
    "worker_profile__service_areas",
    "worker_profile__task_types",
    "worker_profile__capacity",
    "worker_profile__away",
    "worker_profile__delegate_id",
    "worker_load__open_tasks",
    "worker_load__weighted_load",
)


def staff_of(agency_id: Any) -> QuerySet[User]:
    """The agency's active staff: the only people routing ever chooses (or counts in the workload)."""
    return User.objects.filter(agency_id=agency_id, role__in=User.STAFF_ROLES, is_active=True)


def workers_load(agency_id: Any) -> dict[int, Worker]:
    """The agency's active staff with their profiles and counters, in one query (two left joins)."""
    workers = {}
    for row in staff_of(agency_id).values_list(*WORKER_COLUMNS):
        (user_id, username, role, areas, types, capacity, away, delegate, open_tasks, weighted) = row
        workers[user_id] = Worker(
            id=user_id,
            username=username,
            is_agent=role == User.Role.AGENCY,
            service_areas=tuple(areas or ()),
            task_types=tuple(types or ()),
            capacity=capacity,
            away=bool(away),
            delegate_id=delegate,
            open_tasks=open_tasks or 0,
            weighted_load=weighted or 0,
        )
    return workers


def client_worker(task: Task) -> int | None:
    """The worker of the client's most recent other open task in the same agency (client affinity)."""
    return (
        Task.objects.filter(
            client_id=task.client_id, agency_id=task.agency_id, state__in=OPEN_STATES, assignee__isnull=False
        )
        .exclude(pk=task.pk)
        .order_by("-created_at")
        .values_list("assignee_id", flat=True)
        .first()
    )


def task_view(task: Task, rule: RoutingRule | None) -> TaskView:
    affinity = client_worker(task) if rule is not None and rule.client_affinity else None
    return TaskView(
        task_type=task.task_type,
        service_area=task.service_area,
        priority=task.priority,
        assignee_id=task.assignee_id,
        affinity_worker_id=affinity,
    )


_FIND = object()


def decision_for(task: Task, *, rule: Any = _FIND) -> tuple[RoutingRule | None, Decision, dict[int, Worker]]:
    """What routing would do with ``task`` now (nothing written): the rule (found unless given), the ranked
    decision, the workers."""
    if rule is _FIND:
        rule = rule_matching(task)
    if rule is None:
        return None, decide(None, task_view(task, None), {}), {}
    workers = workers_load(task.agency_id)
    return rule, decide(rule_view(rule), task_view(task, rule), workers), workers


def profile_of(user_id: int) -> WorkerProfile:
    """A worker's profile (an unsaved default when they have none yet)."""
    return WorkerProfile.objects.filter(pk=user_id).first() or WorkerProfile(user_id=user_id)
