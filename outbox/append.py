"""The one writer of outbox rows: append one event, append many, advance an aggregate.

Every app writes its events through these functions, inside its own transaction; after the commit the
dispatcher is kicked (``outbox.kick``; beat is the safety net). Advancing an aggregate is a compare-and-swap
on its ``version`` and the event's INSERT in one statement, so the stream stays gap-free and the loser of a
race writes nothing. The statements are ``polaris.sql``'s: precompiled where they are a hot path.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.db import connections, models, router

from polaris.errors import ConcurrentModification
from polaris.sql.append import aggregates_advance_sql
from polaris.sql.precompiled import row_insert, rows_insert, rows_update_then_insert

from .events import EventContext
from .kick import kick_after_commit
from .models import OutboxEvent

L = TypeVar("L", bound=models.Model)


@dataclass(frozen=True)
class NewEvent:
    """One event to append: where it goes in which stream, who caused it, what it says."""

    event_type: str
    aggregate_type: str
    aggregate_id: Any
    sequence: int
    context: EventContext
    payload: dict[str, Any]


def _event(new: NewEvent, occurred_at: datetime | None = None) -> OutboxEvent:
    event = OutboxEvent(
        event_type=new.event_type,
        aggregate_type=new.aggregate_type,
        aggregate_id=new.aggregate_id,
        sequence=new.sequence,
        actor=new.context.actor,
        correlation_id=new.context.correlation_id,
        causation_id=new.context.causation_id,
        depth=new.context.depth,
        payload=new.payload,
    )
    if occurred_at is not None:
        event.occurred_at = occurred_at
    return event


def event_append(
    *,
    event_type: str,
    aggregate_type: str,
    aggregate_id: Any,
    sequence: int,
    context: EventContext,
    payload: dict[str, Any],
) -> OutboxEvent:
    """Insert one event row (precompiled: a task's creation is a hot path)."""
    event = row_insert(_event(NewEvent(event_type, aggregate_type, aggregate_id, sequence, context, payload)))
    kick_after_commit()
    return event


def events_append(events: list[NewEvent], *, occurred_at: datetime | None = None) -> list[OutboxEvent]:
    """Insert several event rows in one statement (``occurred_at``: one instant for all, else now)."""
    if not events:
        return []
    rows = rows_insert([_event(new, occurred_at) for new in events])
    kick_after_commit()
    return rows


def aggregate_advance(
    instance: models.Model,
    *,
    event_type: str,
    aggregate_type: str,
    columns: tuple[str, ...],
    context: EventContext,
    payload: dict[str, Any],
    lock: tuple[type[L], dict[str, Any]] | None = None,
) -> tuple[OutboxEvent, dict[type[models.Model], models.Model | None]]:
    """Persist an aggregate's change and append its event at the next position of its stream, in one
    statement: a compare-and-swap UPDATE (``… WHERE version = <the version we read>``) of ``columns``
    (attnames; they include ``version``) and the event's INSERT, which runs only if the UPDATE claimed the
    row (``polaris.sql.precompiled.rows_update_then_insert``).

    It both detects a concurrent writer and row-locks the aggregate until commit; the loser of a race
    writes nothing and gets ``ConcurrentModification``. ``instance.version`` must already hold the new
    position (the version read plus one; restored on a conflict).

    With ``lock=(model, where)`` the same statement also reads and row-locks that one row of another model.
    Returns the event and ``{model: the locked row or None}`` (empty without ``lock``), for the caller to
    pass on as arguments.
    """
    version: int = instance.version  # type: ignore[attr-defined]
    event = _event(NewEvent(event_type, aggregate_type, instance.pk, version, context, payload))
    values = {field: getattr(instance, field) for field in dict.fromkeys(columns)}
    claimed, locked = rows_update_then_insert(
        type(instance),
        where={"id": instance.pk, "version": version - 1},
        values=values,
        instance=event,
        lock=lock,
    )
    if claimed != 1:
        instance.version = version - 1  # type: ignore[attr-defined]
        raise ConcurrentModification(f"This {aggregate_type.replace('_', ' ')} was changed meanwhile.")
    kick_after_commit()
    return event, ({lock[0]: locked} if lock is not None else {})


@dataclass(frozen=True)
class Advance:
    """One aggregate of a batch advance: read at ``claimed_version``, its new column values (in the order of
    the batch's ``changed``), and its event's sequence and payload."""

    id: Any
    claimed_version: int
    sequence: int
    payload: dict[str, Any]
    values: tuple[Any, ...]


def _json_value(value: Any) -> Any:
    """A value in the batch document: timestamps in full ISO form (microseconds kept), UUIDs as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} in an advance batch")


def aggregates_advance(
    model: type[models.Model],
    *,
    batch: list[Advance],
    changed: tuple[str, ...],
    where: dict[str, Any],
    event_type: str,
    aggregate_type: str,
    context: EventContext,
    now: datetime,
) -> int:
    """Advance many aggregates of ``model`` and append one event each, in one statement whatever the batch
    size (set-based): each row is updated only while ``version`` is still its ``claimed_version`` and the
    fields ``where`` hold their values (compare-and-swap), and an event is written only for a row updated.
    Returns how many were advanced."""
    if not batch:
        return 0
    alias = router.db_for_write(model)
    sql, defaults = aggregates_advance_sql(model, OutboxEvent, changed, tuple(where), alias)
    rows = []
    for advance in batch:
        row: dict[str, Any] = {
            "id": advance.id,
            "claimed_version": advance.claimed_version,
            "sequence": advance.sequence,
            "payload": advance.payload,
        }
        row.update({f"c{position}": value for position, value in enumerate(advance.values)})
        rows.append(row)
    params: dict[str, Any] = dict(defaults)
    params.update({f"w{position}": value for position, value in enumerate(where.values())})
    params.update(
        batch=json.dumps(rows, default=_json_value),
        now=now,
        event_type=event_type,
        aggregate_type=aggregate_type,
        correlation_id=context.correlation_id,
        causation_id=context.causation_id,
        depth=context.depth,
    )
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        (count,) = cursor.fetchone()
    if count:
        kick_after_commit()
    return count
