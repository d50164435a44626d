"""Celery tasks of the automation app: thin wrappers that call the webhook and timer services."""

import logging

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_ready
from django.conf import settings
from django.db import close_old_connections, connection

from .metrics import AUTOMATION_TIMERS_PENDING, automation_metrics_flush
from .timers import FIRE_TASK_NAME, timers_fire_all_due, timers_pending_count
from .webhooks.delivery import webhook_deliveries_due, webhook_delivery_attempt
from .webhooks.retention import webhook_attempts_trim

# Long enough for the HTTP timeout plus DNS; the heartbeat keeps the claim's short lease alive meanwhile.
_TIME_LIMIT = int(settings.WEBHOOK_TIMEOUT_SECONDS * 2 + 20)


@shared_task(
    name="automation.webhook_deliver",
    ignore_result=True,
    soft_time_limit=_TIME_LIMIT,
    time_limit=_TIME_LIMIT + 10,
)
def webhook_deliver_task(delivery_id: int) -> None:
    """One delivery attempt; schedules the next one (the retry schedule) when it must be retried, and
    queues the next delivery of the aggregate when this one finished (ordered endpoints)."""
    result = webhook_delivery_attempt(delivery_id=delivery_id)
    if result.retry_in is not None:
        webhook_deliver_task.apply_async((delivery_id,), countdown=result.retry_in)
    for next_id in result.wake:
        webhook_enqueue(next_id)


@shared_task(name="automation.webhook_sweep", ignore_result=True, expires=50, soft_time_limit=50)
def webhook_sweep_task() -> None:
    """Beat, every few seconds: re-enqueue deliveries whose claim lapsed (their sender died mid-attempt)
    and, as a safety net for lost retry messages, pending ones overdue by more than a minute."""
    for delivery_id in webhook_deliveries_due(grace_seconds=60):
        webhook_deliver_task.delay(delivery_id)


_TIMER_LIMIT = int(settings.TIMER_FIRE_TIME_BUDGET_SECONDS + settings.TIMER_CLAIM_TIMEOUT_SECONDS + 5)


def _fresh_connection() -> None:
    if not connection.in_atomic_block:  # eager (tests): that connection is the caller's
        close_old_connections()


@shared_task(
    name=FIRE_TASK_NAME,
    ignore_result=True,
    acks_late=False,
    soft_time_limit=_TIMER_LIMIT,
    time_limit=_TIMER_LIMIT + 10,
)
def timers_fire_task() -> int:
    """Fire the due timers and arm the next one (sent with an ``eta`` by ``automation.timers``)."""
    _fresh_connection()
    return timers_fire_all_due()


@shared_task(
    name="automation.timers_sweep",
    ignore_result=True,
    expires=settings.TIMER_SWEEP_INTERVAL_SECONDS * 0.8,
    soft_time_limit=_TIMER_LIMIT,
    time_limit=_TIMER_LIMIT + 10,
)
def timers_sweep_task() -> int:
    """Beat's safety net: fire what is due, arm the next timer, publish the pending count."""
    _fresh_connection()
    fired = timers_fire_all_due()
    AUTOMATION_TIMERS_PENDING.set(timers_pending_count())
    return fired


@worker_ready.connect
def _arm_timers_at_start(sender=None, **kwargs) -> None:
    """A restarted worker fires what fell due while it was away and re-arms the next timer. Sent as a
    message (not run here): the main process of a prefork worker must not open database connections."""
    try:
        timers_fire_task.apply_async(retry=False)
    except Exception as exc:
        logging.getLogger("automation.timers").warning("timers not armed at worker start: %s", exc)


@shared_task(name="automation.webhook_attempts_trim", ignore_result=True, expires=3000, soft_time_limit=600)
def webhook_attempts_trim_task() -> None:
    """Retention: drop attempts of finished deliveries older than ``WEBHOOK_ATTEMPT_RETENTION_DAYS``."""
    webhook_attempts_trim()


def webhook_enqueue(delivery_id: int) -> None:
    """Queue one delivery attempt (after commit). No publish retries: if the broker is down the delivery
    stays ``pending`` and ``automation.webhook_sweep`` (or an admin replay) picks it up."""
    webhook_deliver_task.apply_async((delivery_id,), retry=False)


@worker_process_shutdown.connect
def _publish_pending_metrics(**kwargs) -> None:
    """Pool processes leave through ``os._exit`` (no atexit): publish the evaluation counts still held."""
    automation_metrics_flush()
