"""Applying an edit: the diff of old and new values, the one compare-and-swap UPDATE, the one event.

Shared by the task and action-plan services (and so by the API, the bulk endpoint and the admin). Values
in an event's ``changes`` are JSON: ids for references, ISO 8601 for instants. Free text that is not a
title (``FREE_TEXT_FIELDS``: a description, notes) enters the event as its length and a keyed digest
(``polaris.erasure.text_digest``), never its words: a change stays visible and comparable, and no copy of
the text outlives an erasure. Titles stay in full (predicates and webhooks read them); erasure rewrites them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.erasure import text_digest
from workflow import extensions
from workflow.errors import ActionPlanClosed
from workflow.events import EventType
from workflow.models import ActionPlan, ActionPlanState, Task
from workflow.signals import task_changed

from .events import LockedRows, event_record_edit

# Fields an event names without their old and new text (``{field: {}}``): staff-only free text that no
# event payload (and so no webhook, feed reader or client) should carry.
UNDESCRIBED_FIELDS = frozenset({"staff_notes"})

# Reference fields are compared and written by their id columns.
_ATTNAMES = {"assignee": "assignee_id", "action_plan": "action_plan_id"}
# Free text whose words events do not keep (see the module docstring).
FREE_TEXT_FIELDS = frozenset({"description"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _described(field: str, old: Any, new: Any) -> dict[str, Any]:
    if field in UNDESCRIBED_FIELDS:
        return {}
    if field in FREE_TEXT_FIELDS:
        return {"old": text_digest(old or ""), "new": text_digest(new or "")}
    return {"old": _jsonable(old), "new": _jsonable(new)}


def _new_value(field: str, value: Any) -> Any:
    """The column value for ``field`` (a referenced object becomes its id)."""
    if field in _ATTNAMES:
        return None if value is None else value.pk
    return value


def changes_diff(instance: Task | ActionPlan, changes: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{field: (old column value, new column value)}`` for the fields whose value really changes."""
    diff = {}
    for field, value in changes.items():
        old = getattr(instance, _ATTNAMES.get(field, field))
        new = _new_value(field, value)
        if old != new:
            diff[field] = (old, new)
    return diff


def _check_plan_move(task: Task, old_plan_id: Any, new_plan_id: Any) -> None:
    """A task joins or leaves only a draft or active plan (the new plan's client and agency are checked
    by the caller)."""
    ids = [plan_id for plan_id in (old_plan_id, new_plan_id) if plan_id is not None]
    # Locked (in id order: two moves between the same plans cannot deadlock) until the edit commits, so
    # an archive of either plan waits for it, or went first and is seen here.
    states = (
        ActionPlan.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", "state")
    )
    archived = [pk for pk, state in states if state == ActionPlanState.ARCHIVED]
    if archived:
        raise ActionPlanClosed(details={"action_plan": [str(pk) for pk in archived]})


def _record(
    instance: Task | ActionPlan, diff: dict[str, tuple[Any, Any]], event_type: str, context: EventContext
) -> tuple[OutboxEvent, LockedRows, dict[str, dict[str, Any]]]:
    columns = []
    for field, (_old, new) in diff.items():
        column = _ATTNAMES.get(field, field)
        setattr(instance, column, new)
        columns.append(column)
    described = {field: _described(field, old, new) for field, (old, new) in diff.items()}
    payload: dict[str, Any] = {"changes": described}
    if "assignee" in diff:
        payload["old_assignee_id"], payload["new_assignee_id"] = diff["assignee"]
        for annotate in extensions.assignment_annotators:
            payload.update(annotate(instance, *diff["assignee"], context))
    event, locked_rows = event_record_edit(
        instance=instance,
        event_type=event_type,
        edited_fields=tuple(columns),
        context=context,
        payload=payload,
    )
    return event, locked_rows, described


def task_edit_apply(*, task: Task, changes: dict[str, Any], context: EventContext) -> OutboxEvent | None:
    """Write the checked ``changes`` to ``task`` (inside the caller's transaction).

    One event: ``TaskAssigned`` when the assignee is among the changes, else ``TaskUpdated``. Nothing
    changed, nothing written (``None``). Then ``workflow.signals.task_changed`` is sent, in the transaction.
    """
    diff = changes_diff(task, changes)
    if not diff:
        return None
    if "action_plan" in diff:
        _check_plan_move(task, *diff["action_plan"])
    event_type = EventType.TASK_ASSIGNED if "assignee" in diff else EventType.TASK_UPDATED
    event, locked_rows, described = _record(task, diff, event_type, context)
    # The cached related objects must follow their id columns.
    for field in _ATTNAMES:
        if field in diff:
            task._state.fields_cache.pop(field, None)
    task_changed.send(
        sender=Task,
        task=task,
        event=event,
        context=context,
        locked_rows=locked_rows,
        source=None,
        target=None,
        changes=described,
    )
    return event


def action_plan_edit_apply(
    *, plan: ActionPlan, changes: dict[str, Any], context: EventContext
) -> OutboxEvent | None:
    """Write the checked ``changes`` to ``plan`` with one ``ActionPlanUpdated`` event (none if unchanged)."""
    diff = changes_diff(plan, changes)
    if not diff:
        return None
    event, _, _ = _record(plan, diff, EventType.ACTION_PLAN_UPDATED, context)
    return event
