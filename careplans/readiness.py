"""Readiness through dispatch: when a task completes (or is cancelled), the tasks waiting for it move on.

A dispatch handler on ``TaskStateChanged`` (``outbox.registry``), so it runs after the predecessor's commit,
in the dispatcher's transaction with its ledger row: a redelivered event is skipped by the ledger, and each
dependent is locked (``SELECT … FOR UPDATE``) and its state checked (is the predecessor still in its
``waiting_on``?) before anything is written, so two predecessors completing at the same moment (two events
dispatched in parallel) serialise on the dependent and only the second makes it ready — once.

For each dependent still waiting on the predecessor:
- the predecessor was cancelled and the blueprint says ``cancel``: the dependent is cancelled (through the
  task's own transition service: its ``TaskStateChanged`` cascades to its dependents the same way);
- otherwise the predecessor leaves ``waiting_on`` with a ``TaskDependencyMet`` event, or, when it was the
  last, a ``TaskReady`` event that sets ``due_at`` (``careplans.due_dates``) and starts the SLA clock.
Both events have the predecessor's event as causation (and keep its depth: readiness is no automation hop).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.utils import timezone

from outbox.append import aggregate_advance
from outbox.events import EventContext
from outbox.models import OutboxEvent
from sla.clock import sla_record_start
from workflow.events import EventType, task_facts
from workflow.models import Task, TaskState
from workflow.services.tasks import task_transition

from .blueprints import OnPredecessorCancelled
from .due_dates import CalendarCache
from .events import CarePlanEventType
from .models import TaskDependency, TemplatedPlan, TemplatedTask

HANDLER_NAME = "careplans.readiness"
DONE_STATES = (TaskState.COMPLETED, TaskState.CANCELLED)
CLOSED_STATES = DONE_STATES


def _blueprint(task: Task) -> dict[str, Any]:
    """The blueprint the task was made from, in the version its plan runs now ({} if none)."""
    link = TemplatedTask.objects.filter(task_id=task.pk).values_list("key", flat=True).first()
    version = TemplatedPlan.objects.select_related("version").filter(plan_id=task.action_plan_id).first()
    if link is None or version is None:
        return {}
    return next((item for item in version.version.blueprints if item["key"] == link), {})


def _context(event: OutboxEvent) -> EventContext:
    return EventContext(
        actor=None, correlation_id=event.correlation_id, causation_id=event.id, depth=event.depth
    )


def dependent_release(
    *, task_id: Any, predecessor_id: Any, cancelled: bool, event: OutboxEvent, calendars: CalendarCache
) -> str:
    """Apply one predecessor's end to one dependent; returns what happened (for tests and logs):
    ``"skipped"``, ``"cancelled"``, ``"waiting"`` or ``"ready"``."""
    task = Task.objects.select_for_update().get(pk=task_id)
    if predecessor_id not in task.waiting_on or task.state in CLOSED_STATES:
        return "skipped"  # handled before (a redelivery, a concurrent twin) or nothing left to make ready
    blueprint = _blueprint(task)
    if cancelled and blueprint.get("on_predecessor_cancelled") == OnPredecessorCancelled.CANCEL:
        task_transition(
            task_id=task.pk,
            target_state=TaskState.CANCELLED,
            actor=None,
            reason="A task it waited for was cancelled.",
            caused_by=event,
        )
        return "cancelled"
    now = timezone.now()
    task.waiting_on = [pk for pk in task.waiting_on if pk != predecessor_id]
    task.version += 1
    task.updated_at = now
    payload = {
        **task_facts(task),
        "state": task.state,
        "predecessor_id": str(predecessor_id),
        "predecessor_state": TaskState.CANCELLED if cancelled else TaskState.COMPLETED,
        "waiting_on": [str(pk) for pk in task.waiting_on],
    }
    if task.waiting_on:
        aggregate_advance(
            task,
            event_type=CarePlanEventType.TASK_DEPENDENCY_MET,
            aggregate_type=Task.aggregate_type,
            columns=("version", "updated_at", "waiting_on"),
            context=_context(event),
            payload=payload,
        )
        return "waiting"
    task.due_at = calendars.due_at(
        ready_at=now,
        hours=blueprint.get("due_in_business_hours"),
        task_type=task.task_type,
        service_area=task.service_area,
    )
    aggregate_advance(
        task,
        event_type=CarePlanEventType.TASK_READY,
        aggregate_type=Task.aggregate_type,
        columns=("version", "updated_at", "waiting_on", "due_at"),
        context=_context(event),
        payload={**payload, "due_at": task.due_at.isoformat() if task.due_at else None},
    )
    TemplatedTask.objects.filter(task_id=task.pk).update(ready_at=now)
    sla_record_start(task=task, now=now)
    return "ready"


def _ended(event: OutboxEvent) -> bool:
    return event.event_type == EventType.TASK_STATE_CHANGED and event.payload.get("new_state") in DONE_STATES


def _release_all(events: list[OutboxEvent], dependents: dict[Any, list[Any]]) -> None:
    calendars = CalendarCache()
    for event in events:
        for task_id in dependents.get(event.aggregate_id, ()):
            dependent_release(
                task_id=task_id,
                predecessor_id=event.aggregate_id,
                cancelled=event.payload.get("new_state") == TaskState.CANCELLED,
                event=event,
                calendars=calendars,
            )


def _dependents(predecessor_ids: list[Any]) -> dict[Any, list[Any]]:
    """Predecessor id → its dependents' ids, in id order (a fixed lock order)."""
    found: dict[Any, list[Any]] = defaultdict(list)
    rows = TaskDependency.objects.filter(predecessor_id__in=predecessor_ids).order_by("task_id")
    for predecessor_id, task_id in rows.values_list("predecessor_id", "task_id"):
        found[predecessor_id].append(task_id)
    return found


def task_readiness_handle(event: OutboxEvent) -> None:
    """The dispatch handler (one event)."""
    if _ended(event):
        _release_all([event], _dependents([event.aggregate_id]))


def task_readiness_handle_many(events: list[OutboxEvent]) -> None:
    """The batch form: one lookup of dependents for the whole batch, then each event in turn."""
    ended = [event for event in events if _ended(event)]
    if ended:
        _release_all(ended, _dependents([event.aggregate_id for event in ended]))
