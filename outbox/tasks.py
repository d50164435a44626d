"""Celery tasks of the outbox: the dispatch drain, a thin wrapper around the dispatcher."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from outbox.dispatcher import outbox_dispatch
from outbox.kick import DISPATCH_TASK_NAME, kick_acknowledge
from outbox.retention import history_trim, ledger_trim
from polaris.retention import retention_run

logger = logging.getLogger(__name__)

# Time limits: the drain stops starting batches after OUTBOX_DISPATCH_TIME_BUDGET_SECONDS; one batch more
# must fit under the soft limit, and the hard limit is the last resort for a handler stuck in C code.
# Events of a killed run come back after their (short) lease, so a hard kill loses nothing. The heartbeat
# keeps a slow batch's lease alive, so the last batch's headroom is not the lease but half a minute.
DISPATCH_SOFT_TIME_LIMIT = int(settings.OUTBOX_DISPATCH_TIME_BUDGET_SECONDS + 30)
DISPATCH_HARD_TIME_LIMIT = DISPATCH_SOFT_TIME_LIMIT + 30


def _drop_broken_connections() -> None:
    # Not inside an atomic block (an eagerly run task, a test): that connection is the caller's.
    if not connection.in_atomic_block:
        close_old_connections()


# acks_late=False (ack on receipt), so reject_on_worker_lost does not apply: the message carries no work,
# only "drain now". Work lives in the database and survives a lost worker through the lease, not through
# redelivery; and with Redis, an unacked message comes back only after the visibility timeout (an hour),
# long after the next beat tick has drained the backlog anyway.
@shared_task(
    name=DISPATCH_TASK_NAME,
    ignore_result=True,
    acks_late=False,
    soft_time_limit=DISPATCH_SOFT_TIME_LIMIT,
    time_limit=DISPATCH_HARD_TIME_LIMIT,
)
def outbox_dispatch_task() -> dict:
    """Drain due outbox events for up to the time budget; overlapping runs share the work (SKIP LOCKED)."""
    # Celery has no request cycle, so nothing else drops connections the server closed (restart,
    # pg_terminate_backend, idle timeout); do it here, and retry once on a connection lost mid-run.
    _drop_broken_connections()
    kick_acknowledge()
    try:
        report = outbox_dispatch()
    except (OperationalError, InterfaceError):
        logger.warning("database connection lost during dispatch; reconnecting", exc_info=True)
        connection.close()
        report = outbox_dispatch()
    finally:
        _drop_broken_connections()
    if report.claimed:
        logger.info("outbox dispatch", extra=report.as_dict())
    return report.as_dict()


@worker_ready.connect
def _forget_stale_kick(**kwargs: object) -> None:
    # A kick queued before this worker started may be lost with the worker that held it; don't let its
    # flag hold back fresh kicks for the rest of its lifetime.
    kick_acknowledge()


@shared_task(name="outbox.retention_trim", ignore_result=True, expires=3000, soft_time_limit=600)
def outbox_retention_trim_task() -> dict:
    """Beat, hourly: trim the dispatch ledger (and the history, when an operator set a retention)."""
    return {"ledger": ledger_trim(), "events": history_trim()}


@shared_task(name="outbox.retention_registered", ignore_result=True, expires=3000, soft_time_limit=1200)
def retention_registered_task() -> dict:
    """Beat, hourly: every trim the apps registered with ``polaris.retention`` (automation's logs, …), in
    batches of ``RETENTION_BATCH_SIZE``, each its own transaction."""
    counts = retention_run(batch=settings.RETENTION_BATCH_SIZE)
    if any(counts.values()):
        logger.info("retention trimmed", extra={"counts": counts})
    return counts
