"""Applying a routing decision: choose under the agency's routing lock, assign through the workflow's own
assignment service (one ``TaskAssigned`` carrying the decision), or record why nobody could take the task.

Capacity holds under concurrency because every decision of an agency runs under that agency's
``RoutingLock`` row (``SELECT … FOR UPDATE``): the counters a decision reads cannot be raised by another
decision before it commits. The chosen worker's counter row is then locked (with the task's previous
assignee's, in ascending id, as every counter write does) and re-checked, so a concurrent manual assignment
is seen too. Counters move in the same transaction (``routing.load``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from outbox.append import aggregate_advance
from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.access import is_staff_for
from polaris.accounts.models import User
from polaris.errors import PermissionDenied
from workflow.errors import TaskClosed
from workflow.events import task_facts
from workflow.models import Task
from workflow.selectors import task_get
from workflow.services.tasks import CLOSED_STATES, task_assign

from ..decide import Decision, Ranked, RuleView, reason, refusals
from ..events import PendingAssignment, RoutingEventType, pending_reset, pending_set
from ..models import RoutingLock, RoutingRule, RoutingStrategy, TaskRouting, WorkerLoad
from ..selectors import decision_for, rule_matching, rule_view, task_view
from ..statements import enabled_rules


@dataclass
class RoutingOutcome:
    """What a route did: the assignee (``None``: nobody), the rule and strategy, the reasons, the event."""

    task: Task
    assignee_id: int | None
    rule: RoutingRule | None
    decision: Decision
    event: OutboxEvent | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def assigned(self) -> bool:
        return self.assignee_id is not None


def _agency_lock(agency_id: Any) -> None:
    if not RoutingLock.objects.select_for_update().filter(pk=agency_id).exists():
        RoutingLock.objects.get_or_create(agency_id=agency_id)
        RoutingLock.objects.select_for_update().filter(pk=agency_id).exists()


def _lock_loads(user_ids: set[int]) -> dict[int, WorkerLoad]:
    """The counter rows of ``user_ids``, locked in ascending id (created first when missing)."""
    locked = WorkerLoad.objects.select_for_update().filter(pk__in=user_ids).order_by("pk")
    rows = {row.pk: row for row in locked}
    if missing := user_ids - rows.keys():
        agencies = dict(User.objects.filter(pk__in=missing).values_list("pk", "agency_id"))
        for user_id in sorted(missing):
            WorkerLoad.objects.get_or_create(user_id=user_id, defaults={"agency_id": agencies.get(user_id)})
        rows = {row.pk: row for row in locked.all()}
    return rows


def _routing_payload(rule: RoutingRule, decision: Decision, chosen_reasons: list[dict[str, Any]]) -> dict:
    return {
        "rule": str(rule.pk),
        "rule_name": rule.name,
        "strategy": rule.strategy,
        "reasons": [*decision.reasons, *chosen_reasons],
        "excluded": [{"user": item.user_id, "reasons": item.reasons} for item in decision.excluded[:50]],
    }


def _choose_locked(task: Task, decision: Decision, view: RuleView, workers: dict) -> Ranked | None:
    """The first ranked worker still eligible once their counter row is locked (``None``: nobody)."""
    while (item := decision.chosen) is not None:
        rows = _lock_loads({item.user_id, *([task.assignee_id] if task.assignee_id else [])})
        row = rows[item.user_id]
        worker = workers[item.user_id]
        fresh = worker._replace(open_tasks=row.open_tasks, weighted_load=row.weighted_load)
        refused = refusals(fresh, view, task_view(task, None))
        if not refused:
            return item
        decision.exclude_chosen(refused)
    return None


def _failed(task: Task, rule: RoutingRule, decision: Decision, context: EventContext) -> OutboxEvent:
    """``TaskRoutingFailed`` at the task's next position (compare-and-swap, like every task event)."""
    task.version += 1
    task.updated_at = timezone.now()
    reasons = decision.reasons or [reason("NO_ELIGIBLE_WORKER", "Nobody can take this task now.")]
    event, _ = aggregate_advance(
        task,
        event_type=RoutingEventType.TASK_ROUTING_FAILED,
        aggregate_type=Task.aggregate_type,
        columns=("version", "updated_at"),
        context=context,
        payload={**task_facts(task), "state": task.state, "routing": _routing_payload(rule, decision, [])},
    )
    decision.reasons = reasons
    return event


@transaction.atomic
def task_route(
    *,
    task_id: Any,
    actor: User | None,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> RoutingOutcome:
    """Route a task now: the matching rule's choice becomes its assignee (one ``TaskAssigned`` with the
    rule, strategy and reasons); nobody eligible, one ``TaskRoutingFailed`` with the reasons and the task
    stays as it is; no rule matching, nothing is written. ``actor``: agency staff or an admin (``None``: the
    system). Raises ``NotFound`` (out of scope), ``PermissionDenied``, ``TaskClosed``."""
    task = task_get(user=actor, task_id=task_id)
    if actor is not None and not is_staff_for(task, actor):
        raise PermissionDenied("Only administrators and the task's agency staff may route it.")
    if task.state in CLOSED_STATES:
        raise TaskClosed(details={"state": task.state})
    rule = rule_matching(task)
    if rule is None:
        _, decision, _ = decision_for(task, rule=None)
        return RoutingOutcome(task, None, None, decision, reasons=decision.reasons)
    _agency_lock(task.agency_id)
    _, decision, workers = decision_for(task, rule=rule)
    context = EventContext.build(actor=actor, correlation_id=correlation_id, caused_by=caused_by)
    chosen = _choose_locked(task, decision, rule_view(rule), workers)
    if chosen is None:
        if not any(r["code"] == "NO_ELIGIBLE_WORKER" for r in decision.reasons):
            decision.reasons = [reason("NO_ELIGIBLE_WORKER", "Nobody can take this task now.")]
        event = _failed(task, rule, decision, context)
        return RoutingOutcome(task, None, rule, decision, event, decision.reasons)
    routing = _routing_payload(rule, decision, chosen.reasons)
    token = pending_set(PendingAssignment(task.pk, chosen.user_id, routing))
    assigned_event: OutboxEvent | None
    try:
        task, assigned_event = task_assign(
            task_id=task.pk,
            actor=actor,
            assignee=User.objects.get(pk=chosen.user_id),
            correlation_id=context.correlation_id,
            caused_by=caused_by,
        )
    finally:
        pending_reset(token)
    TaskRouting.objects.update_or_create(
        task_id=task.pk,
        defaults={"rule": rule, "strategy": rule.strategy, "assignee_id_routed": chosen.user_id},
    )
    if rule.strategy == RoutingStrategy.ROUND_ROBIN and not any(
        r["code"] == "CLIENT_AFFINITY" for r in chosen.reasons
    ):
        RoutingRule.objects.filter(pk=rule.pk).update(last_assignee_id=chosen.user_id)
    reasons = [*decision.reasons, *chosen.reasons]
    return RoutingOutcome(task, chosen.user_id, rule, decision, assigned_event, reasons)


def task_route_on_create(*, task: Task, context: EventContext) -> None:
    """Routing at creation (``workflow.signals.task_created``): an unassigned task a rule matches is routed
    by the system in the creating transaction; the creator's correlation id is kept."""
    if task.assignee_id is not None or rule_matching(task) is None:
        return  # one indexed query for the agencies that route nothing
    _route_in_step(task, context)


def tasks_route_on_create(*, tasks: list[Task], context: EventContext) -> None:
    """Routing of tasks created together (``workflow.signals.tasks_created``: a plan made from a template):
    each agency's rules are read once, and each unassigned task a rule matches is routed as
    ``task_route_on_create`` routes one — waiting tasks too, so their worker knows what is coming."""
    rules: dict[Any, list[RoutingRule]] = {}
    for task in tasks:
        if task.assignee_id is not None:
            continue
        if task.agency_id not in rules:
            rules[task.agency_id] = enabled_rules(task.agency_id)  # one statement per agency
        if any(
            rule.matches(task_type=task.task_type, service_area=task.service_area, priority=task.priority)
            for rule in rules[task.agency_id]
        ):
            _route_in_step(task, context)


def _route_in_step(task: Task, context: EventContext) -> None:
    outcome = task_route(task_id=task.pk, actor=None, correlation_id=context.correlation_id)
    # The caller holds the instance it created: keep its version and assignee in step with the rows.
    task.version, task.assignee_id = outcome.task.version, outcome.task.assignee_id
    task.updated_at = outcome.task.updated_at
    task._state.fields_cache.pop("assignee", None)
