"""Retention: the dispatch ledger need not grow forever, and an operator may bound the history — without
ever dropping an event that live work still needs.

- Ledger rows (``HandledEvent``) of events dispatched more than ``OUTBOX_LEDGER_RETENTION_DAYS`` ago
  can no longer matter: only a claimed or a dead event is ever handled again (a lease that ran out,
  a replay), and a dispatched event is neither. Dead events keep theirs (a replay skips the handlers
  that already handled them).
- The event history stays unless ``OUTBOX_EVENT_RETENTION_DAYS`` is set; then dispatched events older
  than that go, with what refers to them and is only history (ledger rows, feed positions, trigger
  executions) — except an event that something still needs: a row that refers to it with ``PROTECT``
  (a timer, pending or not, and a webhook delivery: their own retention frees the event once they are
  finished and old), and an event another app keeps (``history_keep_register``: the SLA app keeps the
  events of tasks whose SLA record is open). Undone and dead events are never dropped.
- The history is walked oldest first along a partial index of dispatched events, ``(occurred_at, id)``,
  ``batch`` rows at a time from where the last batch ended (so rows just deleted, still in the index
  until vacuum, are never scanned again), each batch deleted in its own short transaction; the walk ends
  at the cutoff.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q

from polaris.retention import Pace, batches_delete, cutoff_days
from polaris.sql.erasure import index_walk, rows_delete
from polaris.sql.session import commit_without_flush_wait

from .models import HandledEvent, OutboxEvent

_keepers: list[Callable[[], Q]] = []

WALK_KEY = ("occurred_at", "id")


def history_keep_register(keeper: Callable[[], Q]) -> None:
    """Add ``keeper() -> Q`` over ``OutboxEvent``: events it matches are never trimmed (registered by apps
    whose live work needs events, in their ``AppConfig.ready()``)."""
    if keeper not in _keepers:
        _keepers.append(keeper)


def _protected() -> list[Exists]:
    """``Exists`` over every relation that refers to an event with ``on_delete=PROTECT``."""
    return [
        Exists(relation.related_model._base_manager.filter(**{relation.field.name: OuterRef("pk")}))
        for relation in OutboxEvent._meta.related_objects
        if relation.on_delete is models.PROTECT
    ]


def history_trimmable() -> models.QuerySet[OutboxEvent]:
    """Dispatched events nothing needs any more (the age condition aside)."""
    events = OutboxEvent.objects.filter(status=OutboxEvent.Status.DISPATCHED)
    for needed in _protected():
        events = events.exclude(needed)
    for keeper in _keepers:
        events = events.exclude(keeper())
    return events


def _events_delete(ids: list) -> int:
    """Delete these events: first what only records their history (``CASCADE`` relations: ledger rows,
    feed positions, trigger executions), detach ``SET_NULL`` references, then the rows in one statement
    (``PROTECT``ed events were never chosen)."""
    if not ids:
        return 0
    for relation in OutboxEvent._meta.related_objects:
        rows = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": ids})
        if relation.on_delete is models.CASCADE:
            rows.delete()
        elif relation.on_delete is models.SET_NULL:
            rows.update(**{relation.field.name: None})
    return rows_delete(OutboxEvent, ids)


def ledger_trim(*, batch: int = 10_000) -> int:
    """Delete ledger rows of events dispatched before the retention; returns how many."""
    cutoff = cutoff_days(settings.OUTBOX_LEDGER_RETENTION_DAYS)
    if cutoff is None:
        return 0
    return batches_delete(
        HandledEvent.objects.filter(
            event__status=OutboxEvent.Status.DISPATCHED, event__dispatched_at__lt=cutoff
        ),
        batch=batch,
    )


def history_trim(*, batch: int = 1_000) -> int:
    """Delete dispatched events older than ``OUTBOX_EVENT_RETENTION_DAYS`` (0: never) that nothing needs;
    returns how many."""
    cutoff = cutoff_days(settings.OUTBOX_EVENT_RETENTION_DAYS)
    if cutoff is None:
        return 0
    deleted = 0
    after: tuple = (datetime.min.replace(tzinfo=UTC), uuid.UUID(int=0))
    dispatched = {"status": OutboxEvent.Status.DISPATCHED}
    pace = Pace()
    while True:
        rows = index_walk(OutboxEvent, WALK_KEY, after, batch, where=dispatched)
        old = [row[0] for row in rows if row[1] < cutoff]
        if not old:
            return deleted  # the walk reached the cutoff
        after = tuple(rows[-1][1:])
        with transaction.atomic():
            # A batch lost in a crash is deleted by the next run: no need to wait for the WAL flush.
            commit_without_flush_wait()
            doomed = list(history_trimmable().filter(pk__in=old).values_list("pk", flat=True))
            deleted += _events_delete(doomed)
        if not pace.rest():
            return deleted  # the run's time is up: the next run goes on from the oldest
