"""The workflow's events, appended through the outbox (``outbox.append``) inside the caller's transaction.

These say *which* event a creation, an edit or a transition writes and what its payload holds; the
outbox module does the writing. A task write also locks the row another app registered
(``workflow.extensions.task_locked_rows``: the SLA record) in its own statement and returns it, so the
caller can pass it on as an argument (``workflow.signals.task_changed``).
"""

from typing import Any

from django.db import models
from django.utils import timezone

from outbox.append import aggregate_advance, event_append
from outbox.events import EventContext
from outbox.models import OutboxEvent
from workflow import extensions
from workflow.events import EventType, action_plan_facts, task_facts
from workflow.models import ActionPlan, ActionPlanState, Task

# The rows a task write locked in its statement: {model: the row, or None when there is none}.
LockedRows = dict[type[models.Model], models.Model | None]

_PLAN_EVENT_BY_TARGET: dict[str, str] = {
    ActionPlanState.ACTIVE: EventType.ACTION_PLAN_ACTIVATED,
    ActionPlanState.ARCHIVED: EventType.ACTION_PLAN_ARCHIVED,
}


def _advance(
    instance: Task | ActionPlan,
    *,
    event_type: str,
    context: EventContext,
    payload: dict[str, Any],
    edited_fields: tuple[str, ...] = (),
) -> tuple[OutboxEvent, LockedRows]:
    """The aggregate's next position: its ``transition_fields`` plus ``edited_fields`` (attnames, e.g.
    ``assignee_id``, set on the instance first) written with the event in one compare-and-swap statement."""
    instance.version += 1
    instance.updated_at = timezone.now()
    lock = None
    if isinstance(instance, Task) and extensions.task_locked_rows:
        ((locked_model, field),) = extensions.task_locked_rows
        lock = (locked_model, {field: instance.pk})
    return aggregate_advance(
        instance,
        event_type=event_type,
        aggregate_type=instance.aggregate_type,
        columns=(*instance.transition_fields, *edited_fields),
        context=context,
        payload=payload,
        lock=lock,
    )


def event_record_creation(*, instance: Task | ActionPlan, context: EventContext) -> OutboxEvent:
    """The first event of an aggregate's stream (sequence 1)."""
    if isinstance(instance, Task):
        event_type, facts = EventType.TASK_CREATED, task_facts(instance)
    else:
        event_type, facts = EventType.ACTION_PLAN_CREATED, action_plan_facts(instance)
    return event_append(
        event_type=event_type,
        aggregate_type=instance.aggregate_type,
        aggregate_id=instance.pk,
        sequence=instance.version,
        context=context,
        payload={**facts, "old_state": None, "new_state": instance.state, "transition": "create"},
    )


def event_record_edit(
    *,
    instance: Task | ActionPlan,
    event_type: str,
    edited_fields: tuple[str, ...],
    context: EventContext,
    payload: dict[str, Any],
) -> tuple[OutboxEvent, LockedRows]:
    """Persist an edit (the changed columns, in the compare-and-swap UPDATE) and write its one event."""
    facts = task_facts(instance) if isinstance(instance, Task) else action_plan_facts(instance)
    return _advance(
        instance,
        event_type=event_type,
        context=context,
        payload={**facts, "state": instance.state, **payload},
        edited_fields=edited_fields,
    )


def event_record_transition(
    *, instance: Task | ActionPlan, transition: str, source: str, target: str, context: EventContext
) -> tuple[OutboxEvent, LockedRows]:
    """Advance the aggregate's stream and write the transition's event (called from ``post_transition``)."""
    if isinstance(instance, Task):
        event_type, facts = EventType.TASK_STATE_CHANGED, task_facts(instance)
    else:
        event_type, facts = _PLAN_EVENT_BY_TARGET[target], action_plan_facts(instance)
    payload = {
        **facts,
        "old_state": source,
        "new_state": target,
        "transition": transition,
        "reason": context.reason,
        "reason_internal": context.reason_internal,
    }
    # A guard a supervisor overrode (``checklist_complete``): set on the instance by the service, and
    # recorded with the reason the override requires.
    if overridden := getattr(instance, "guards_overridden", ()):
        payload["overridden_guards"] = list(overridden)
    return _advance(instance, event_type=event_type, context=context, payload=payload)
