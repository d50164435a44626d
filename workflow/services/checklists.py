"""Task checklists: adding items, ticking and unticking them, and a supervisor's override at completion.

Every change is an event on the task's stream, in the transaction that makes it: ``TaskChecklistItemsAdded``
(one per task, whatever the number of items) and ``TaskChecklistItemChanged`` (one per tick or untick). The
task's row is locked first (``SELECT … FOR UPDATE``): two ticks of one task's items both land, one after
the other, instead of one losing a compare-and-swap; a transition meanwhile waits, then finds the
version moved and is refused (``CONCURRENT_MODIFICATION``), so a completion never decides on a stale
checklist. The task keeps two counters (``checklist_size``, ``checklist_open_required``) in the same
write, so the ``checklist_complete`` guard and a task without items cost no query.

Item text is free text: events carry its length and keyed digest (``polaris.erasure.text_digest``), never
its words; the rows are scrubbed by the eraser registered here. Clients see their task's checklist (a
task's steps, like its title and description: staff-only words belong in ``staff_notes``) but cannot
tick it.

``checklist_items_add_many`` adds items to many tasks at once: one INSERT of every item, one UPDATE of every
task, one INSERT of every event. Tasks being made (a plan from a template) get theirs from
``checklist_items_for_new_tasks``, inserted with the tasks.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from outbox.append import NewEvent, events_append
from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.access import is_admin, is_staff_for, is_supervisor
from polaris.accounts.models import User
from polaris.erasure import eraser_register, rows_erase, text_digest
from polaris.errors import NotFound, PermissionDenied, ValidationFailed
from polaris.sql.precompiled import row_get
from workflow.errors import TaskClosed
from workflow.events import EventType, task_facts
from workflow.models import Task, TaskChecklistItem, TaskState
from workflow.selectors import task_get

from .events import event_record_edit

CHECKLIST_MAX_ITEMS = 50
CHECKLIST_TEXT_MAX_LENGTH = 500
CHECKLIST_GUARD = "checklist_complete"
_CLOSED = (TaskState.COMPLETED, TaskState.CANCELLED)


def checklist_items_validate(items: Any, *, field: str = "items") -> list[dict[str, Any]]:
    """``items`` as ``[{"text": stripped, "required": bool}]``, or ``ValidationFailed`` naming each bad
    item (``items[2].text``). ``required`` defaults to true. Shared by the API and plan templates."""
    if not isinstance(items, list):
        raise ValidationFailed(details={field: ["Must be a list of {text, required} items."]})
    if len(items) > CHECKLIST_MAX_ITEMS:
        raise ValidationFailed(details={field: [f"At most {CHECKLIST_MAX_ITEMS} items."]})
    errors: dict[str, list[str]] = {}
    normalized = []
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            errors[where] = ["Must be an object with text and required."]
            continue
        if unknown := sorted(set(item) - {"text", "required"}):
            errors[where] = [f"Unknown field(s): {', '.join(map(str, unknown))}."]
        raw, required = item.get("text"), item.get("required", True)
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            errors[f"{where}.text"] = ["A non-blank string is required."]
        elif len(text) > CHECKLIST_TEXT_MAX_LENGTH:
            errors[f"{where}.text"] = [f"At most {CHECKLIST_TEXT_MAX_LENGTH} characters."]
        if not isinstance(required, bool):
            errors[f"{where}.required"] = ["Must be true or false."]
        if where not in errors and f"{where}.text" not in errors and f"{where}.required" not in errors:
            normalized.append({"text": text, "required": required})
    if errors:
        raise ValidationFailed(details=errors)
    return normalized


def _item_facts(item: TaskChecklistItem) -> dict[str, Any]:
    """What an event says about an item: never its words (length and digest only)."""
    return {
        "item_id": str(item.pk),
        "position": item.position,
        "required": item.required,
        "done": item.done,
        "text": text_digest(item.text),
    }


def _check_may_change(task: Task, actor: User | None) -> None:
    if not is_staff_for(task, actor):
        raise PermissionDenied("Only admins and the task's agency staff may change its checklist.")
    if task.state in _CLOSED:
        raise TaskClosed(details={"state": task.state})


@transaction.atomic
def checklist_items_add_many(
    pairs: list[tuple[Task, list[dict[str, Any]]]],
    actor: User | None,
    *,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> list[TaskChecklistItem]:
    """Append items to several tasks: ``pairs`` is ``[(task, [{"text", "required"}, …]), …]`` (a task named
    twice gets both lists, in order; an empty list adds nothing). One ``TaskChecklistItemsAdded`` per task.

    Three statements after the tasks' lock, whatever the number of tasks: the items' INSERT, the tasks'
    UPDATE (version, counters) and the events' INSERT. The instances passed in are brought up to date.
    ``PermissionDenied`` unless ``actor`` is staff of every task (``None``, the system, may);
    ``TaskClosed``; ``ValidationFailed`` (bad items, or more than 50 on a task). Nothing is written on error.
    """
    wanted: dict[Any, list[dict[str, Any]]] = {}
    instances: dict[Any, list[Task]] = {}
    for task, items in pairs:
        wanted.setdefault(task.pk, []).extend(checklist_items_validate(items))
        instances.setdefault(task.pk, []).append(task)
    wanted = {pk: items for pk, items in wanted.items() if items}
    if not wanted:
        return []
    # Locked in id order: two writers of overlapping task sets cannot deadlock.
    locked = list(Task.objects.select_for_update().filter(pk__in=list(wanted)).order_by("pk"))
    if len(locked) != len(wanted):
        raise NotFound("Task not found.")
    rows: list[TaskChecklistItem] = []
    for task in locked:
        _check_may_change(task, actor)
        items = wanted[task.pk]
        if task.checklist_size + len(items) > CHECKLIST_MAX_ITEMS:
            raise ValidationFailed(
                details={
                    "items": [
                        f"A task holds at most {CHECKLIST_MAX_ITEMS} checklist items; this one already "
                        f"has {task.checklist_size}."
                    ]
                }
            )
        rows.extend(
            TaskChecklistItem(
                task_id=task.pk,
                position=task.checklist_size + offset,
                text=item["text"],
                required=item["required"],
            )
            for offset, item in enumerate(items)
        )
    TaskChecklistItem.objects.bulk_create(rows)
    now = timezone.now()
    added: dict[Any, list[TaskChecklistItem]] = {}
    for row in rows:
        added.setdefault(row.task_id, []).append(row)
    for task in locked:
        task.version += 1
        task.checklist_size += len(added[task.pk])
        task.checklist_open_required += sum(1 for row in added[task.pk] if row.required)
        task.updated_at = now
    fields = ["version", "checklist_size", "checklist_open_required", "updated_at"]
    Task.objects.bulk_update(locked, fields)
    context = EventContext.build(actor=actor, correlation_id=correlation_id, caused_by=caused_by)
    events_append([_items_added_event(task, added[task.pk], context) for task in locked])
    for task in locked:
        for instance in instances[task.pk]:
            for name in fields:
                setattr(instance, name, getattr(task, name))
            instance.__dict__.pop("_checklist_cache", None)
    return rows


def _items_added_event(task: Task, rows: list[TaskChecklistItem], context: EventContext) -> NewEvent:
    """``TaskChecklistItemsAdded`` of ``rows`` on ``task`` (already at its new version and counters)."""
    return NewEvent(
        event_type=EventType.TASK_CHECKLIST_ITEMS_ADDED,
        aggregate_type=Task.aggregate_type,
        aggregate_id=task.pk,
        sequence=task.version,
        context=context,
        payload={
            **task_facts(task),
            "state": task.state,
            "items": [_item_facts(row) for row in rows],
            "checklist_size": task.checklist_size,
            "checklist_open_required": task.checklist_open_required,
        },
    )


def checklist_items_for_new_tasks(
    pairs: list[tuple[Task, list[dict[str, Any]]]], context: EventContext
) -> tuple[list[TaskChecklistItem], list[NewEvent]]:
    """The checklists of tasks built but not inserted yet (many made at once: a plan from a template), as
    ``checklist_items_add_many`` would add them right after the tasks' creation: each task with items
    moves to its next version with its counters set, and gets its ``TaskChecklistItemsAdded``. Returns the
    item rows and the events for the caller to insert with the tasks (no lock and no UPDATE: nobody else
    can see the tasks yet). ``ValidationFailed`` for bad items."""
    rows: list[TaskChecklistItem] = []
    events: list[NewEvent] = []
    for task, items in pairs:
        added = [
            TaskChecklistItem(
                task_id=task.pk,
                position=task.checklist_size + offset,
                text=item["text"],
                required=item["required"],
            )
            for offset, item in enumerate(checklist_items_validate(items))
        ]
        if not added:
            continue
        task.version += 1
        task.checklist_size += len(added)
        task.checklist_open_required += sum(1 for row in added if row.required)
        rows += added
        events.append(_items_added_event(task, added, context))
    return rows, events


def checklist_items_add(
    task: Task,
    items: list[dict[str, Any]],
    *,
    actor: User | None,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> list[TaskChecklistItem]:
    """Append ``items`` (``[{"text", "required"}]``) to ``task``'s checklist, with one event."""
    return checklist_items_add_many(
        [(task, items)], actor=actor, correlation_id=correlation_id, caused_by=caused_by
    )


@transaction.atomic
def checklist_add(*, task_id: Any, items: Any, actor: User | None, correlation_id: str | None = None) -> Task:
    """``POST /tasks/{id}/checklist``: the task in the caller's scope (else ``NotFound``), items added."""
    task = task_get(user=actor, task_id=task_id)
    if not items:
        raise ValidationFailed(details={"items": ["At least one item is required."]})
    checklist_items_add(task, items, actor=actor, correlation_id=correlation_id)
    return task


@transaction.atomic
def checklist_item_set_done(
    *,
    task_id: Any,
    item_id: Any,
    done: bool | None,
    actor: User | None,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> tuple[Task, TaskChecklistItem, OutboxEvent | None]:
    """Tick (``done=True``) or untick an item, with one ``TaskChecklistItemChanged`` (none if it already
    was, or ``done`` is ``None``: a PATCH that names nothing). Staff of the task's agency and admins (a
    client: ``PermissionDenied``); a task or item out of scope is ``NotFound``; a completed or cancelled
    task is ``TaskClosed``."""
    scoped = task_get(user=actor, task_id=task_id)
    task = row_get(Task, where={"id": scoped.pk}, lock=True)
    assert task is not None  # rows are never deleted while referenced
    try:
        item_pk = uuid.UUID(str(item_id))
    except ValueError:
        raise NotFound("Checklist item not found.") from None
    item = TaskChecklistItem.objects.filter(pk=item_pk, task_id=task.pk).first()
    if item is None:
        raise NotFound("Checklist item not found.")
    _check_may_change(task, actor)
    if done is None or item.done == done:
        return task, item, None
    item.done = done
    item.done_by = actor if done else None
    item.done_at = timezone.now() if done else None
    item.save(update_fields=["done", "done_by", "done_at"])
    if item.required:
        task.checklist_open_required += -1 if done else 1
    context = EventContext.build(actor=actor, correlation_id=correlation_id, caused_by=caused_by)
    event, _ = event_record_edit(
        instance=task,
        event_type=EventType.TASK_CHECKLIST_ITEM_CHANGED,
        edited_fields=("checklist_open_required",),
        context=context,
        payload={"item": _item_facts(item), "checklist_open_required": task.checklist_open_required},
    )
    return task, item, event


def checklist_override_apply(*, task: Task, actor: User | None, target_state: str, reason: str) -> None:
    """A completion that overrides open required items: a supervisor of the task's agency or an admin
    (``PermissionDenied`` for anyone else, agents included), with a reason (``ValidationFailed``). The
    override is left on the instance for the guard and the event (``overridden_guards``)."""
    supervisor_here = is_supervisor(actor) and actor is not None and actor.agency_id == task.agency_id
    if not (is_admin(actor) or supervisor_here):
        raise PermissionDenied(
            "Only a supervisor of the task's agency or an admin may override its checklist."
        )
    if target_state != TaskState.COMPLETED:
        raise ValidationFailed(
            details={"override_checklist": ["Only a completion can override the checklist."]}
        )
    if not reason.strip():
        raise ValidationFailed(details={"reason": ["Overriding the checklist needs a reason."]})
    if task.checklist_open_required:
        task.guards_overridden = (CHECKLIST_GUARD,)  # type: ignore[attr-defined]


def _checklist_text_erase(*, client_id: int, dry_run: bool) -> int:
    rows = TaskChecklistItem.objects.filter(task__client_id=client_id)
    return rows_erase(rows, text_fields=("text",), dry_run=dry_run)


def checklist_eraser_register() -> None:
    """Called from ``WorkflowConfig.ready()``: the items' text of a client's tasks is scrubbed on erasure."""
    eraser_register(TaskChecklistItem._meta.db_table, _checklist_text_erase)
