"""Writing domain events into the outbox, inside the caller's transaction."""

from typing import Any

from django.db import models
from django.utils import timezone

from outbox.events import EventContext
from outbox.kick import kick_after_commit
from outbox.models import OutboxEvent
from polaris.errors import ConcurrentModification
from polaris.precompiled import row_insert, rows_update_then_insert
from workflow import extensions
from workflow.events import EventType
from workflow.models import ActionPlan, ActionPlanState, Task


def aggregate_advance(
    instance: Task | ActionPlan,
    *,
    event_type: str,
    context: EventContext,
    payload: dict[str, Any],
    edited_fields: tuple[str, ...] = (),
) -> OutboxEvent:
    """Persist the aggregate's change and append its event at the next position of its stream, in one
    statement: a compare-and-swap UPDATE (``… WHERE version = <the version we read>``) and the event's
    INSERT, which runs only if the UPDATE claimed the row (``polaris.precompiled.rows_update_then_insert``).

    It both detects a concurrent writer (someone advanced the stream since we read it) and row-locks the
    aggregate until commit, so sequences stay gap-free and the loser of a race writes nothing (it gets
    ``ConcurrentModification``). The columns written are the model's ``transition_fields`` plus
    ``edited_fields`` (attnames, e.g. ``assignee_id``), which an edit sets on the instance first.
    """
    model: type[models.Model] = type(instance)
    read_version = instance.version
    instance.version = read_version + 1
    instance.updated_at = timezone.now()
    columns = dict.fromkeys((*instance.transition_fields, *edited_fields))
    values = {field: getattr(instance, field) for field in columns}
    event = _event(
        event_type=event_type,
        aggregate_type=instance.aggregate_type,
        aggregate_id=instance.pk,
        sequence=instance.version,
        context=context,
        payload=payload,
    )
    lock = None
    if isinstance(instance, Task) and extensions.task_locked_rows:
        ((locked_model, field),) = extensions.task_locked_rows
        lock = (locked_model, {field: instance.pk})
    claimed, locked = rows_update_then_insert(
        model, where={"id": instance.pk, "version": read_version}, values=values, instance=event, lock=lock
    )
    if claimed != 1:
        instance.version = read_version
        raise ConcurrentModification(
            f"This {instance.aggregate_type.replace('_', ' ')} was changed meanwhile."
        )
    if lock is not None and isinstance(instance, Task):
        instance.locked_rows = {lock[0]: locked}
    kick_after_commit()
    instance.recorded_event = event
    return event


def _event(
    *,
    event_type: str,
    aggregate_type: str,
    aggregate_id: Any,
    sequence: int,
    context: EventContext,
    payload: dict[str, Any],
) -> OutboxEvent:
    return OutboxEvent(
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        sequence=sequence,
        actor=context.actor,
        correlation_id=context.correlation_id,
        causation_id=context.causation_id,
        depth=context.depth,
        payload=payload,
    )


def event_append(
    *,
    event_type: str,
    aggregate_type: str,
    aggregate_id: Any,
    sequence: int,
    context: EventContext,
    payload: dict[str, Any],
) -> OutboxEvent:
    """Insert one event row; after commit, kick the dispatcher (beat is the safety net)."""
    event = _event(
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        sequence=sequence,
        context=context,
        payload=payload,
    )
    row_insert(event)  # precompiled: this is the hot path of every transition (polaris.precompiled)
    kick_after_commit()
    return event


def task_facts(task: Task) -> dict[str, Any]:
    """What every task event says about the task (predicates and webhooks read these)."""
    return {
        "task_id": str(task.pk),
        "title": task.title,
        "task_type": task.task_type,
        "service_area": task.service_area,
        "priority": task.priority,
        "client_id": task.client_id,
        "agency_id": str(task.agency_id),
        "assignee_id": task.assignee_id,
        "action_plan_id": str(task.action_plan_id) if task.action_plan_id else None,
    }


def action_plan_facts(plan: ActionPlan) -> dict[str, Any]:
    return {
        "action_plan_id": str(plan.pk),
        "title": plan.title,
        "client_id": plan.client_id,
        "agency_id": str(plan.agency_id),
    }


_PLAN_EVENT_BY_TARGET: dict[str, str] = {
    ActionPlanState.ACTIVE: EventType.ACTION_PLAN_ACTIVATED,
    ActionPlanState.ARCHIVED: EventType.ACTION_PLAN_ARCHIVED,
}


def event_record_creation(*, instance: Task | ActionPlan, context: EventContext) -> OutboxEvent:
    """The first event of an aggregate's stream (sequence 1)."""
    if isinstance(instance, Task):
        event_type, facts = EventType.TASK_CREATED, task_facts(instance)
    else:
        event_type, facts = EventType.ACTION_PLAN_CREATED, action_plan_facts(instance)
    event = event_append(
        event_type=event_type,
        aggregate_type=instance.aggregate_type,
        aggregate_id=instance.pk,
        sequence=instance.version,
        context=context,
        payload={**facts, "old_state": None, "new_state": instance.state, "transition": "create"},
    )
    instance.recorded_event = event
    return event


def event_record_edit(
    *,
    instance: Task | ActionPlan,
    event_type: str,
    edited_fields: tuple[str, ...],
    context: EventContext,
    payload: dict[str, Any],
) -> OutboxEvent:
    """Persist an edit (the changed columns, in the compare-and-swap UPDATE) and write its one event."""
    facts = task_facts(instance) if isinstance(instance, Task) else action_plan_facts(instance)
    return aggregate_advance(
        instance,
        event_type=event_type,
        context=context,
        payload={**facts, "state": instance.state, **payload},
        edited_fields=edited_fields,
    )


def event_record_transition(
    *, instance: Task | ActionPlan, transition: str, source: str, target: str, context: EventContext
) -> OutboxEvent:
    """Advance the aggregate's stream and write the transition's event (called from ``post_transition``)."""
    if isinstance(instance, Task):
        event_type, facts = EventType.TASK_STATE_CHANGED, task_facts(instance)
    else:
        event_type, facts = _PLAN_EVENT_BY_TARGET[target], action_plan_facts(instance)
    return aggregate_advance(
        instance,
        event_type=event_type,
        context=context,
        payload={
            **facts,
            "old_state": source,
            "new_state": target,
            "transition": transition,
            "reason": context.reason,
        },
    )
