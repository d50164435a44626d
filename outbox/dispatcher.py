"""Delivering committed outbox events to the registered handlers.

One round of dispatch:

1. **Claim** (``outbox.claims``): due events, oldest first, the first undone event of each aggregate,
   under a short lease that a heartbeat thread renews while the batch runs.
2. **Handle**, handler by handler: one transaction per (batch, handler) holding the handler's effects
   and its ledger rows (``HandledEvent``, unique per (event, handler)). Events already in the ledger for
   that handler are skipped. The fast path calls the handler for every event (or once with the whole
   batch, for a handler registered with a batch form) and bulk-inserts the ledger;
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from outbox.metrics import OUTBOX_DISPATCH_LAG, OUTBOX_EVENTS_PROCESSED
from outbox.models import HandledEvent, OutboxEvent
from polaris.backoff import backoff_seconds
from polaris.leases import LeaseHeartbeat
from polaris.sql.dispatch import ledger_handled_sql, ledger_insert_sql, settle_done_sql

from .claims import bookkeeping_commit, outbox_claim, outbox_release, outbox_renew
from .registry import Handler, handlers_for

logger = logging.getLogger(__name__)

PENDING = OutboxEvent.Status.PENDING.value
PROCESSING = OutboxEvent.Status.PROCESSING.value
DISPATCHED = OutboxEvent.Status.DISPATCHED.value
DEAD = OutboxEvent.Status.DEAD.value

_ERROR_LIMIT = 4000  # characters of traceback kept in last_error


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
            ledger_handled_sql(HandledEvent),
            [handler.name, [event.id for event in events]],
        )
        return {row[0] for row in cursor.fetchall()}


def _handle_fast(handler: Handler, events: list[OutboxEvent], now: datetime) -> None:
    """All events in one transaction, ledger rows in one INSERT; any failure aborts the whole batch."""
    index: int | None = None
    try:
        with transaction.atomic():
            if handler.many is not None:
                handler.many(events)  # a failure names no event: the careful path finds it
            else:
                for index, event in enumerate(events):  # noqa: B007  (read in the except clause)
                    handler.func(event)
            index = None  # past the handlers: a failure now is the ledger insert (a concurrent worker)
            with connection.cursor() as cursor:
                cursor.execute(
                    ledger_insert_sql(HandledEvent),
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
        bookkeeping_commit()
        if done:
            with connection.cursor() as cursor:
                cursor.execute(
                    settle_done_sql(OutboxEvent),
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


class _ClaimAhead:
    """Claims the next batch on a second connection (a helper thread) while this one is handled.

    The database works on the claim while this process runs the handlers, so a long backlog drains
    faster (``make bench ARGS=peers``). Only a full batch that finished well within the lease asks for
    one: a prefetched claim is not renewed while it waits, and a batch that sees nothing (another
    connection cannot see rows its caller has not committed, as in a test's transaction) is simply
    claimed again on the caller's connection.
    """

    def __init__(self, *, limit: int) -> None:
        self._limit = limit
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[list[OutboxEvent]] | None = None

    def start(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-claim-ahead")
        self._pending = self._pool.submit(outbox_claim, limit=self._limit)

    def take(self) -> list[OutboxEvent]:
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else []

    def give_back(self) -> None:
        try:
            _release_quietly(self.take())
        except Exception:
            logger.warning("could not claim ahead", exc_info=True)

    def close(self) -> None:
        if self._pool is None:
            return
        try:
            # A function, not ``connection.close``: that attribute would be looked up here, on this thread's
            # connection, and Django refuses to close it from the helper thread.
            self._pool.submit(_close_this_threads_connection).result()
        except Exception:
            logger.warning("could not close the claim-ahead connection", exc_info=True)
        self._pool.shutdown()


def _close_this_threads_connection() -> None:
    connection.close()


def _release_quietly(events: list[OutboxEvent]) -> None:
    try:
        outbox_release(events=events)
    except Exception:
        logger.warning("could not release claimed outbox events", exc_info=True)


def outbox_dispatch(
    *,
    budget_seconds: float | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> DispatchReport:
    """Drain due events batch after batch until none is due or the time budget is spent.

    Safe to run anywhere, any number of times at once (SKIP LOCKED claims, the ledger, leases):
    Celery runs it from the kick and from beat; tests and benchmarks call it directly. While batches
    come full and fast, the next one is claimed while the current one is handled (``_ClaimAhead``).
    """
    budget = settings.OUTBOX_DISPATCH_TIME_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    size = batch_size or settings.OUTBOX_DISPATCH_BATCH_SIZE
    started = time.monotonic()
    report = DispatchReport()
    ahead = _ClaimAhead(limit=size)
    fast = False  # the last batch took well under a lease: a prefetched claim will not lapse waiting
    try:
        events = outbox_claim(limit=size)
        while events:
            last = max_batches is not None and report.batches + 1 >= max_batches
            if fast and not last and len(events) == size:
                ahead.start()
            batch_started = time.monotonic()
            try:
                report.add(outbox_dispatch_batch(events=events))
            except BaseException:
                # A soft time limit or a lost connection mid-batch: give the rest back rather than leave
                # it to the lease. If the connection is gone this fails too, and the lease takes over.
                _release_quietly(events)
                ahead.give_back()
                raise
            if last or time.monotonic() - started >= budget:
                ahead.give_back()
                break
            fast = time.monotonic() - batch_started < settings.OUTBOX_LEASE_SECONDS / 4
            events = ahead.take() or outbox_claim(limit=size)
    finally:
        ahead.close()
    report.seconds = time.monotonic() - started
    return report
