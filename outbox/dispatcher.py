"""Delivering committed outbox events to the registered handlers.

One round of dispatch:

1. **Claim** (one autocommitted statement): due rows — ``pending`` rows whose ``next_attempt_at`` has
   come, and ``processing`` rows whose lease ran out — oldest first, ``FOR UPDATE SKIP LOCKED`` so
   concurrent workers take disjoint batches, and only the first undone event of each aggregate (an
   earlier ``pending``/``processing`` event of the same aggregate holds later ones back; ``dead`` and
   ``dispatched`` ones do not). Claimed rows become ``processing``; their ``next_attempt_at`` is set to
   the lease expiry, so an event whose worker died is simply due again later (one index serves both).
   ``attempts`` counts claims, so an event that kills its worker every time still ends up dead.
   The lease is short (``OUTBOX_LEASE_SECONDS``, seconds): while the batch runs, a heartbeat thread
   (``polaris.leases``) renews it every ``OUTBOX_HEARTBEAT_SECONDS``, fenced by ``attempts`` so it only
   renews claims that are still this worker's. A killed worker stops renewing and its events are due
   again within one lease; a slow but live one keeps them.
2. **Handle**, handler by handler: one transaction per (batch, handler) holding the handler's effects
   and its ledger rows (``HandledEvent``, unique per (event, handler)). Events already in the ledger for
   that handler are skipped. The fast path calls the handler for every event and bulk-inserts the ledger;
   if anything fails (a handler raises, or a concurrent worker wrote a ledger row first) the transaction
   rolls back and the batch is redone with one savepoint per event, which isolates the failure.
3. **Settle**: events all of whose handlers succeeded become ``dispatched`` (one UPDATE); the others
   are retried with exponential backoff and jitter, or dead-lettered after ``OUTBOX_MAX_ATTEMPTS``.

Times come from ``django.utils.timezone.now()`` (not the database clock) so tests can travel in time.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from outbox.models import HandledEvent, OutboxEvent
from polaris.backoff import backoff_seconds
from polaris.leases import LeaseHeartbeat, renew_lock_timeout
from polaris.metrics import OUTBOX_DISPATCH_LAG, OUTBOX_EVENTS_PROCESSED

from .registry import Handler, handlers_for

logger = logging.getLogger(__name__)

PENDING = OutboxEvent.Status.PENDING.value
PROCESSING = OutboxEvent.Status.PROCESSING.value
DISPATCHED = OutboxEvent.Status.DISPATCHED.value
DEAD = OutboxEvent.Status.DEAD.value

_TABLE = OutboxEvent._meta.db_table
_LEDGER_TABLE = HandledEvent._meta.db_table
_ERROR_LIMIT = 4000  # characters of traceback kept in last_error

# Backed by outbox_due_idx (next_attempt_at WHERE status IN pending/processing) for the scan and by
# outbox_undone_aggregate_idx for the "no earlier undone event of this aggregate" probe. ``= ANY(ARRAY(…))``
# rather than ``IN (…)``: with IN the planner hash-joins the whole table (a sequential scan per claim);
# with an array it updates the picked rows through the primary key.
_CLAIM_SQL = f"""
UPDATE {_TABLE} AS claimed
   SET status = %(processing)s,
       attempts = claimed.attempts + 1,
       next_attempt_at = %(lease_until)s,
       locked_until = %(lease_until)s
 WHERE claimed.id = ANY(ARRAY(
        SELECT due.id
          FROM {_TABLE} AS due
         WHERE due.status IN (%(pending)s, %(processing)s)
           AND due.next_attempt_at <= %(now)s
           AND NOT EXISTS (
                SELECT 1
                  FROM {_TABLE} AS earlier
                 WHERE earlier.aggregate_type = due.aggregate_type
                   AND earlier.aggregate_id = due.aggregate_id
                   AND earlier.sequence < due.sequence
                   AND earlier.status IN (%(pending)s, %(processing)s)
           )
         ORDER BY due.next_attempt_at
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED
       ))
RETURNING claimed.*
"""  # noqa: S608  (table names come from model metadata, values are parameters)


# Renew this worker's claims: the same rows, still processing, claimed by the same claim (``attempts``
# changes with every claim, so a claim that lapsed and was taken by another worker is left alone).
_RENEW_SQL = f"""
UPDATE {_TABLE} AS claimed
   SET next_attempt_at = %(lease_until)s,
       locked_until = %(lease_until)s
  FROM unnest(%(ids)s::uuid[], %(attempts)s::integer[]) AS mine(id, attempts)
 WHERE claimed.id = mine.id
   AND claimed.attempts = mine.attempts
   AND claimed.status = %(processing)s
"""  # noqa: S608  (table names come from model metadata, values are parameters)


@dataclass
class DispatchReport:
    """What a dispatch run did (returned by ``outbox_dispatch``; logged by the task)."""

    batches: int = 0
    claimed: int = 0
    dispatched: int = 0
    retried: int = 0
    dead: int = 0
    seconds: float = 0.0
    handler_failures: Counter = field(default_factory=Counter)

    def add(self, other: DispatchReport) -> None:
        self.batches += other.batches
        self.claimed += other.claimed
        self.dispatched += other.dispatched
        self.retried += other.retried
        self.dead += other.dead
        self.handler_failures.update(other.handler_failures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "claimed": self.claimed,
            "dispatched": self.dispatched,
            "retried": self.retried,
            "dead": self.dead,
            "seconds": round(self.seconds, 3),
            "handler_failures": dict(self.handler_failures),
        }


def retry_delay(*, attempts: int) -> timedelta:
    """Backoff before an event's next attempt (``OUTBOX_RETRY_BASE_SECONDS``, capped at ``…_MAX_SECONDS``)."""
    return timedelta(
        seconds=backoff_seconds(
            attempts=attempts, base=settings.OUTBOX_RETRY_BASE_SECONDS, cap=settings.OUTBOX_RETRY_MAX_SECONDS
        )
    )


def _bookkeeping_commit() -> None:
    """Let this transaction commit without waiting for its WAL flush (``synchronous_commit = off``).

    Only for the claim and the settle: if the database crashed and lost one of them, the event would
    simply be claimed or delivered again, which the lease and the ledger make harmless. It never makes
    the database inconsistent. Handler transactions (effects + ledger) keep full durability.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


def outbox_claim(
    *, limit: int, now: datetime | None = None, lease_seconds: float | None = None
) -> list[OutboxEvent]:
    """Claim up to ``limit`` due events (see the module docstring); returns them in stream order.

    Runs as its own short transaction so the row locks are held only for the claim itself; from then on
    the ``processing`` status and the lease keep other claimers away.
    """
    now = now or timezone.now()
    lease = settings.OUTBOX_LEASE_SECONDS if lease_seconds is None else lease_seconds
    params = {
        "pending": PENDING,
        "processing": PROCESSING,
        "now": now,
        "lease_until": now + timedelta(seconds=lease),
        "limit": limit,
    }
    with transaction.atomic():
        _bookkeeping_commit()
        events = list(OutboxEvent.objects.raw(_CLAIM_SQL, params))
    events.sort(key=lambda event: (event.occurred_at, event.aggregate_id, event.sequence))
    return events


def outbox_renew(*, events: list[OutboxEvent], lease_seconds: float | None = None) -> int:
    """Extend the lease of claims this worker still holds; returns how many it renewed."""
    lease = settings.OUTBOX_LEASE_SECONDS if lease_seconds is None else lease_seconds
    params: dict[str, Any] = {
        "lease_until": timezone.now() + timedelta(seconds=lease),
        "ids": [event.id for event in events],
        "attempts": [event.attempts for event in events],
        "processing": PROCESSING,
    }
    with transaction.atomic():
        _bookkeeping_commit()
        renew_lock_timeout()
        with connection.cursor() as cursor:
            cursor.execute(_RENEW_SQL, params)
            return cursor.rowcount


def _error_text(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return text[-_ERROR_LIMIT:]


class _BatchFailed(Exception):
    """Raised by the fast path after its transaction rolled back; names the event that failed, if one did."""

    def __init__(self, *, failed_index: int | None, error: BaseException) -> None:
        super().__init__(str(error))
        self.failed_index = failed_index
        self.error = error


def _already_handled(handler: Handler, events: list[OutboxEvent]) -> set:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id FROM {_LEDGER_TABLE} WHERE handler = %s AND event_id = ANY(%s)",  # noqa: S608
            [handler.name, [event.id for event in events]],
        )
        return {row[0] for row in cursor.fetchall()}


def _handle_fast(handler: Handler, events: list[OutboxEvent], now: datetime) -> None:
    """All events in one transaction, ledger rows in one INSERT; any failure aborts the whole batch."""
    index: int | None = None
    try:
        with transaction.atomic():
            for index, event in enumerate(events):  # noqa: B007  (read in the except clause)
                handler.func(event)
            index = None  # past the handlers: a failure now is the ledger insert (a concurrent worker)
            with connection.cursor() as cursor:
                # One statement, one array parameter: far cheaper than bulk_create's per-row objects.
                cursor.execute(
                    f"INSERT INTO {_LEDGER_TABLE} (handler, event_id, handled_at) "
                    "SELECT %s, unnest(%s::uuid[]), %s",
                    [handler.name, [event.id for event in events], now],
                )
    except SoftTimeLimitExceeded:
        raise  # the run is out of time: not the handler's failure
    except Exception as exc:
        raise _BatchFailed(failed_index=index, error=exc) from exc


def _connection_lost() -> bool:
    """The database connection itself broke: not the handler's fault, so not a handler failure."""
    raw = connection.connection
    return raw is None or raw.closed or bool(getattr(raw, "broken", False))


def _log_failure(handler: Handler, event: OutboxEvent, exc: BaseException) -> str:
    logger.warning(
        "outbox handler failed",
        extra={"handler": handler.name, "event_id": str(event.id), "event_type": event.event_type},
        exc_info=exc,
    )
    return f"[{handler.name}] {_error_text(exc)}"


def _handle_careful(handler: Handler, events: list[OutboxEvent], now: datetime) -> dict[Any, str]:
    """One savepoint per event: a failing event rolls back alone. Returns {event id: error}."""
    errors: dict[Any, str] = {}
    with transaction.atomic():
        for event in events:
            try:
                with transaction.atomic():
                    handler.func(event)
                    HandledEvent.objects.create(handler=handler.name, event_id=event.id, handled_at=now)
            except IntegrityError:
                # Another worker handled it meanwhile (its ledger row won the race); its effects stand.
                continue
            except SoftTimeLimitExceeded:
                raise
            except Exception as exc:
                if _connection_lost():
                    raise
                errors[event.id] = _log_failure(handler, event, exc)
    return errors


def _run_handler(handler: Handler, events: list[OutboxEvent], now: datetime) -> dict[Any, str]:
    todo_ids = {event.id for event in events} - _already_handled(handler, events)
    todo = [event for event in events if event.id in todo_ids]
    if not todo:
        return {}
    try:
        _handle_fast(handler, todo, now)
        return {}
    except _BatchFailed as failure:
        if _connection_lost():
            raise failure.error from None
        errors: dict[Any, str] = {}
        if failure.failed_index is not None:
            # That event already had its attempt; the ones before it are redone (their effects were
            # rolled back with the batch), the ones after it were never called.
            failed = todo.pop(failure.failed_index)
            errors[failed.id] = _log_failure(handler, failed, failure.error)
        errors.update(_handle_careful(handler, todo, now))
        return errors


def _settle(
    events: list[OutboxEvent], errors: dict[Any, list[str]], now: datetime, report: DispatchReport
) -> None:
    """Write the outcome of a batch: dispatched in one UPDATE, failures one row each (they are rare)."""
    max_attempts = settings.OUTBOX_MAX_ATTEMPTS
    done = [event for event in events if event.id not in errors]
    failed = [event for event in events if event.id in errors]
    with transaction.atomic():
        _bookkeeping_commit()
        if done:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {_TABLE} SET status = %s, dispatched_at = %s, locked_until = NULL, "  # noqa: S608
                    "last_error = '' WHERE id = ANY(%s) AND status = %s",
                    [DISPATCHED, now, [event.id for event in done], PROCESSING],
                )
        for event in failed:
            error = "\n".join(errors[event.id])[-_ERROR_LIMIT:]
            if event.attempts >= max_attempts:
                status, next_attempt_at = DEAD, now
            else:
                status, next_attempt_at = PENDING, now + retry_delay(attempts=event.attempts)
            OutboxEvent.objects.filter(pk=event.pk, status=PROCESSING).update(
                status=status, next_attempt_at=next_attempt_at, locked_until=None, last_error=error
            )
            event.status = status
    outcome: Counter = Counter()
    for event in done:
        outcome[(event.event_type, DISPATCHED)] += 1
        OUTBOX_DISPATCH_LAG.observe(max(0.0, (now - event.occurred_at).total_seconds()))
    for event in failed:
        status = DEAD if event.status == DEAD else "retried"
        outcome[(event.event_type, status)] += 1
        if status == DEAD:
            logger.error("outbox event dead-lettered", extra={"event_id": str(event.id)})
    for (event_type, status), count in outcome.items():
        OUTBOX_EVENTS_PROCESSED.labels(event_type, status).inc(count)
    report.dispatched += len(done)
    report.dead += sum(1 for event in failed if event.status == DEAD)
    report.retried += sum(1 for event in failed if event.status != DEAD)


def outbox_dispatch_batch(*, events: list[OutboxEvent]) -> DispatchReport:
    """Hand claimed events to their handlers and settle them (see the module docstring)."""
    report = DispatchReport(batches=1, claimed=len(events))
    if not events:
        return report
    now = timezone.now()
    errors: dict[Any, list[str]] = {}
    by_handler: dict[str, tuple[Handler, list[OutboxEvent]]] = {}
    for event in events:
        if event.attempts > settings.OUTBOX_MAX_ATTEMPTS:
            # Every earlier claim ended without a settle (worker killed, hard time limit): this event
            # may be what kills workers, so it is not run again but dead-lettered for a human to look at.
            errors[event.id] = [
                f"claimed {event.attempts} times without finishing (worker lost or timed out each time)"
            ]
            continue
        for handler in handlers_for(event.event_type):
            by_handler.setdefault(handler.name, (handler, []))[1].append(event)
    heartbeat = LeaseHeartbeat(
        renew=lambda: outbox_renew(events=events),
        every=settings.OUTBOX_HEARTBEAT_SECONDS,
        expected=len(events),
        name="outbox",
    )
    with heartbeat:
        for handler, handler_events in by_handler.values():
            for event_id, error in _run_handler(handler, handler_events, now).items():
                errors.setdefault(event_id, []).append(error)
                report.handler_failures[handler.name] += 1
    _settle(events, errors, timezone.now(), report)
    return report


def outbox_release(*, events: list[OutboxEvent]) -> int:
    """Hand claimed-but-unhandled events back (due now, the claim not counted), e.g. on a soft time limit."""
    ids = [event.id for event in events]
    if not ids:
        return 0
    return OutboxEvent.objects.filter(pk__in=ids, status=PROCESSING).update(
        status=PENDING, attempts=F("attempts") - 1, next_attempt_at=timezone.now(), locked_until=None
    )


def outbox_dispatch(
    *,
    budget_seconds: float | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> DispatchReport:
    """Drain due events batch after batch until none is due or the time budget is spent.

    Safe to run anywhere, any number of times at once (SKIP LOCKED claims, the ledger, leases):
    Celery runs it from the kick and from beat; tests and benchmarks call it directly.
    """
    budget = settings.OUTBOX_DISPATCH_TIME_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    size = batch_size or settings.OUTBOX_DISPATCH_BATCH_SIZE
    started = time.monotonic()
    report = DispatchReport()
    while max_batches is None or report.batches < max_batches:
        events = outbox_claim(limit=size)
        if not events:
            break
        try:
            report.add(outbox_dispatch_batch(events=events))
        except BaseException:
            # A soft time limit or a lost connection mid-batch: give the rest back rather than leave it
            # to the lease. If the connection is gone this fails too, and the lease takes over.
            try:
                outbox_release(events=events)
            except Exception:
                logger.warning("could not release claimed outbox events", exc_info=True)
            raise
        if time.monotonic() - started >= budget:
            break
    report.seconds = time.monotonic() - started
    return report
