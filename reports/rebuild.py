"""The direct way: the rollups recomputed from the event history, and the rebuild that writes them.

``rollups_recompute`` reads the outbox (the history; no second copy is kept) in task order, folds each
task's events and sums the contributions: the same figures the handler keeps incrementally, which is what
the property test checks. ``rollups_rebuild`` (the ``reports_rebuild`` command) replaces the stored
rollups and folds with that recomputation, under a lock that holds the handler back meanwhile; events
dispatched after it are folded on top, and folding an event already in the rebuild changes nothing.
Events trimmed from the history by retention (``OUTBOX_EVENT_RETENTION_DAYS``) are gone from a rebuild.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from outbox.models import OutboxEvent
from polaris.sql.reports import history_sql, tables_clear_sql

from .fold import SLA_OUTCOME_EVENT_TYPES, Fold, Key, contributions, fold_event
from .models import Rollup, TaskFold
from .rollups import ROLLUP_EVENT_TYPES, folds_write, rollups_add

HistoryRow = tuple[
    uuid.UUID, str, int, int, str | None, str | None, str | None, str | None, str | None, bool | None
]
FOLD_WRITE_BATCH = 5000


@dataclass
class Recomputation:
    rollups: Counter[Key] = field(default_factory=Counter)
    tasks: int = 0
    events: int = 0


def history_rows(*, chunk: int = 10_000) -> Iterator[HistoryRow]:
    """The rollups' events from the outbox (the fields the fold reads) in task order, streamed."""
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(
            history_sql(OutboxEvent),
            {"types": list(ROLLUP_EVENT_TYPES), "sla": list(SLA_OUTCOME_EVENT_TYPES)},
        )
        while rows := cursor.fetchmany(chunk):
            yield from rows


def _fold_row(fold: Fold, row: HistoryRow) -> None:
    _, event_type, sequence, at_ms, agency_id, service_area, task_type, new_state, record, breached = row
    payload: dict[str, Any] = {"agency_id": agency_id, "service_area": service_area, "task_type": task_type}
    if new_state is not None:
        payload["new_state"] = new_state
    if record is not None:
        payload["sla_record_id"] = record
    if breached is not None:
        payload["breached"] = breached
    fold_event(fold, event_type=event_type, sequence=sequence, at_ms=at_ms, payload=payload)


def rollups_recompute(
    rows: Iterator[HistoryRow] | None = None, *, on_fold: Callable[[Fold], None] | None = None
) -> Recomputation:
    """Fold the history task by task and sum every task's contributions (``rows`` in task order)."""
    result = Recomputation()
    current: Fold | None = None

    def finish(fold: Fold | None) -> None:
        if fold is None:
            return
        result.tasks += 1
        result.rollups.update(contributions(fold))
        if on_fold is not None:
            on_fold(fold)

    for row in history_rows() if rows is None else rows:
        result.events += 1
        if current is None or current.task_id != str(row[0]):
            finish(current)
            current = Fold(str(row[0]))
        _fold_row(current, row)
    finish(current)
    result.rollups = Counter({key: value for key, value in result.rollups.items() if value})
    return result


@transaction.atomic
def rollups_rebuild() -> Recomputation:
    """Replace the rollups and folds with a recomputation from the history (one transaction)."""
    with connection.cursor() as cursor:
        for statement in tables_clear_sql(TaskFold, Rollup):
            cursor.execute(statement)
    pending: list[Fold] = []

    def keep(fold: Fold) -> None:
        pending.append(fold)
        if len(pending) >= FOLD_WRITE_BATCH:
            folds_write(pending)
            pending.clear()

    result = rollups_recompute(on_fold=keep)
    folds_write(pending)
    items = list(result.rollups.items())
    for start in range(0, len(items), 50_000):
        rollups_add(Counter(dict(items[start : start + 50_000])))
    return result
