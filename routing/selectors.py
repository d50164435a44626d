"""Reads for routing: rules in the caller's scope, and what a decision reads (the matching rule, the agency's
workers with their counters, the client's worker: three indexed statements, ``routing.statements``, never a
count of tasks)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from polaris.access import manager_scope
from polaris.accounts.models import User
from polaris.errors import NotFound
from workflow.models import Task

from .decide import Decision, RuleView, TaskView, Worker, decide
from .models import RoutingRule, WorkerProfile
from .statements import client_latest_worker, enabled_rules, staff_workers


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
    ids read in the same statement (``candidate_ids``)."""
    for rule in enabled_rules(task.agency_id):
        if rule.matches(task_type=task.task_type, service_area=task.service_area, priority=task.priority):
            return rule
    return None


def staff_of(agency_id: Any) -> QuerySet[User]:
    """The agency's active staff: the only people routing ever chooses (or counts in the workload)."""
    return User.objects.filter(agency_id=agency_id, role__in=User.STAFF_ROLES, is_active=True)


def task_view(task: Task, rule: RoutingRule | None) -> TaskView:
    affinity = client_latest_worker(task) if rule is not None and rule.client_affinity else None
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
    workers = staff_workers(task.agency_id)
    return rule, decide(rule_view(rule), task_view(task, rule), workers), workers


def profile_of(user_id: int) -> WorkerProfile:
    """A worker's profile (an unsaved default when they have none yet)."""
    return WorkerProfile.objects.filter(pk=user_id).first() or WorkerProfile(user_id=user_id)
