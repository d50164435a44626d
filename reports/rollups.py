"""The batch dispatch handler that keeps the rollups: fold the batch's events into their tasks' folds and
add the change in each task's contributions to the rollup counters.

Effectively once, twice over: the dispatcher writes the ledger rows in this handler's transaction (a
redelivered event is skipped), and folding an event already folded changes nothing (``reports.fold``), so
even an event handled again (a rebuild racing dispatch) cannot count twice. Two statements per batch: the
folds read ``FOR UPDATE`` in task order (two dispatchers sharing a task — an SLA breach beside its task's
transition — serialise without deadlocking), then one write of the folds and the counters (rows in key
order, same reason). A new task's fold is inserted only if absent; if another dispatcher inserted it
first, the batch raises and the dispatcher redoes it event by event, reading that fold.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.db import connection

from polaris.sql.reports import batch_write_sql, fold_upsert_sql, folds_lock_sql, rollup_add_sql

from .fold import SLA_OUTCOME_EVENT_TYPES, TASK_EVENT_TYPES, Fold, Key, contributions_add, fold_event
from .models import Rollup, TaskFold

if TYPE_CHECKING:
    from outbox.models import OutboxEvent

HANDLER_NAME = "reports.rollups"
ROLLUP_EVENT_TYPES = (*TASK_EVENT_TYPES, *SLA_OUTCOME_EVENT_TYPES)


def event_task_id(event: OutboxEvent) -> uuid.UUID | None:
    """The task an event is about: a task event's aggregate, an SLA outcome event's ``task_id``."""
    if event.event_type in SLA_OUTCOME_EVENT_TYPES:
        return event.payload_uuid("task_id")
    return event.aggregate_id if event.aggregate_type == "task" else None


def epoch_ms(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def ms_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class FoldRaced(Exception):
    """Another dispatcher inserted the fold of a task this batch saw as new: the batch is redone (the
    dispatcher's careful path), this time reading that fold."""


def _fold_of(row: tuple[Any, ...]) -> Fold:
    task_id, agency_id, service_area, task_type, facts_sequence, created_ms, steps, breached, sla = row
    if isinstance(steps, str):  # Django's psycopg set-up hands jsonb over as text (JSONField parses it)
        steps = json.loads(steps)
    if isinstance(sla, str):
        sla = json.loads(sla)
    return Fold(
        str(task_id),
        str(agency_id) if agency_id else None,
        service_area,
        task_type,
        facts_sequence,
        created_ms,
        [list(step) for step in steps or []],
        breached,
        {record: list(outcome) for record, outcome in (sla or {}).items()},
    )


def _fold_params(rows: list[Fold]) -> list[list[Any]]:
    return [
        [uuid.UUID(fold.task_id) for fold in rows],
        [uuid.UUID(fold.agency_id) if fold.agency_id else None for fold in rows],
        [fold.service_area for fold in rows],
        [fold.task_type for fold in rows],
        [fold.facts_sequence for fold in rows],
        [fold.created_ms for fold in rows],
        [json.dumps(fold.steps, separators=(",", ":")) for fold in rows],
        [fold.breached for fold in rows],
        [json.dumps(fold.sla, separators=(",", ":")) for fold in rows],
    ]


def _rollup_params(delta: Mapping[Key, int]) -> list[list[Any]]:
    keys = [key for key, value in delta.items() if value]
    return [
        [key[0] for key in keys],
        [ms_datetime(key[1]) for key in keys],
        [uuid.UUID(key[2]) if key[2] else None for key in keys],
        [key[3] for key in keys],
        [key[4] for key in keys],
        [key[5] for key in keys],
        [delta[key] for key in keys],
    ]


def folds_write(folds: Iterable[Fold]) -> None:
    """Insert or replace these folds (one statement)."""
    rows = list(folds)
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(fold_upsert_sql(TaskFold), _fold_params(rows))


def rollups_add(delta: Mapping[Key, int]) -> None:
    """Add ``delta`` to the rollup counters, with the daily sums of its backlog deltas (one statement)."""
    params = _rollup_params(delta)
    if params[0]:
        with connection.cursor() as cursor:
            cursor.execute(rollup_add_sql(Rollup), params)


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
        cursor.execute(folds_lock_sql(TaskFold), [task_ids])
        stored = {row[0]: _fold_of(row) for row in cursor.fetchall()}
    delta: dict[Key, int] = {}
    new: list[Fold] = []
    old: list[Fold] = []
    for task_id in task_ids:
        before = stored.get(task_id)
        after = before.copy() if before is not None else Fold(str(task_id))
        for event in by_task[task_id]:
            fold_event(after, **_fold_input(event))
        if after == before:
            continue  # everything in it was folded already (a redelivery)
        contributions_add(delta, after)
        if before is None:
            new.append(after)
        else:
            old.append(after)
            contributions_add(delta, before, sign=-1)
    if not (new or old):
        return
    with connection.cursor() as cursor:
        cursor.execute(
            batch_write_sql(TaskFold, Rollup), _fold_params(new) + _fold_params(old) + _rollup_params(delta)
        )
        inserted = cursor.fetchone()[0]
    if inserted != len(new):
        raise FoldRaced(f"{len(new) - inserted} of this batch's new task folds were inserted meanwhile.")


def rollups_apply_one(event: OutboxEvent) -> None:
    """The per-event form (the dispatcher's careful path): the batch form on one event."""
    rollups_apply([event])
