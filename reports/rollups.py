"""The batch dispatch handler that keeps the rollups: fold the batch's events into their tasks' folds and
add the change in each task's contributions to the rollup counters.

Effectively once, twice over: the dispatcher writes the ledger rows in this handler's transaction (a
redelivered event is skipped), and folding an event already folded changes nothing (``reports.fold``), so
even an event handled again (a rebuild racing dispatch) cannot count twice. Three statements per batch
beyond the folds' read: advisory locks on the batch's tasks (sorted: no deadlock between dispatchers that
share a task), the folds' upsert, and the counters' upsert (sorted by key, for the same reason).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.db import connection

from polaris.sql.reports import fold_lock_sql, fold_upsert_sql, rollup_add_sql

from .fold import BREACH_EVENT_TYPE, TASK_EVENT_TYPES, Fold, Key, contributions_delta, fold_event
from .models import Rollup, TaskFold

if TYPE_CHECKING:
    from outbox.models import OutboxEvent

HANDLER_NAME = "reports.rollups"
ROLLUP_EVENT_TYPES = (*TASK_EVENT_TYPES, BREACH_EVENT_TYPE)


def event_task_id(event: OutboxEvent) -> uuid.UUID | None:
    """The task an event is about: a task event's aggregate, an SLA breach's ``task_id``."""
    if event.event_type == BREACH_EVENT_TYPE:
        return event.payload_uuid("task_id")
    return event.aggregate_id if event.aggregate_type == "task" else None


def epoch_ms(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def ms_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def advisory_key(task_id: uuid.UUID) -> int:
    """A signed 64-bit advisory lock key for a task (its UUID's high half)."""
    high = task_id.int >> 64
    return high - (1 << 64) if high >= 1 << 63 else high


def _fold_of(row: TaskFold) -> Fold:
    return Fold(
        str(row.task_id),
        str(row.agency_id) if row.agency_id else None,
        row.service_area,
        row.task_type,
        row.facts_sequence,
        row.created_ms,
        [list(step) for step in row.steps or []],
        row.breached,
    )


def folds_write(folds: Iterable[Fold]) -> None:
    """Insert or replace these folds (one statement)."""
    rows = list(folds)
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            fold_upsert_sql(TaskFold),
            [
                [uuid.UUID(fold.task_id) for fold in rows],
                [uuid.UUID(fold.agency_id) if fold.agency_id else None for fold in rows],
                [fold.service_area for fold in rows],
                [fold.task_type for fold in rows],
                [fold.facts_sequence for fold in rows],
                [fold.created_ms for fold in rows],
                [json.dumps(fold.steps, separators=(",", ":")) for fold in rows],
                [fold.breached for fold in rows],
            ],
        )


def rollups_add(delta: Counter[Key]) -> None:
    """Add ``delta`` to the rollup counters (one statement, rows in key order)."""
    keys = sorted((key for key, value in delta.items() if value), key=lambda key: tuple(map(str, key)))
    if not keys:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            rollup_add_sql(Rollup),
            [
                [key[0] for key in keys],
                [ms_datetime(key[1]) for key in keys],
                [uuid.UUID(key[2]) if key[2] else None for key in keys],
                [key[3] for key in keys],
                [key[4] for key in keys],
                [key[5] for key in keys],
                [delta[key] for key in keys],
            ],
        )


def _fold_input(event: OutboxEvent) -> dict[str, Any]:
    return {
        "event_type": event.event_type,
        "sequence": event.sequence,
        "at_ms": epoch_ms(event.occurred_at),
        "payload": event.payload or {},
    }


def rollups_apply(events: list[OutboxEvent]) -> None:
    """The batch form: fold every event of the batch, then write the folds and the counters' change."""
    by_task: dict[uuid.UUID, list[OutboxEvent]] = {}
    for event in events:
        task_id = event_task_id(event)
        if task_id is not None:
            by_task.setdefault(task_id, []).append(event)
    if not by_task:
        return
    task_ids = sorted(by_task)
    with connection.cursor() as cursor:
        cursor.execute(fold_lock_sql(), [sorted({advisory_key(task_id) for task_id in task_ids})])
    stored = {row.task_id: _fold_of(row) for row in TaskFold.objects.filter(task_id__in=task_ids)}
    delta: Counter[Key] = Counter()
    changed: list[Fold] = []
    for task_id in task_ids:
        before = stored.get(task_id)
        after = before.copy() if before is not None else Fold(str(task_id))
        for event in by_task[task_id]:
            fold_event(after, **_fold_input(event))
        if after != before:
            changed.append(after)
            delta.update(contributions_delta(before, after))
    folds_write(changed)
    rollups_add(delta)


def rollups_apply_one(event: OutboxEvent) -> None:
    """The per-event form (the dispatcher's careful path): the batch form on one event."""
    rollups_apply([event])
