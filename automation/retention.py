"""Retention of automation's logs: finished webhook deliveries (with their attempts), trigger executions,
fired or cancelled timers and acknowledged alerts, each past its own number of days (settings; 0 keeps
forever). Live work is never a candidate: undelivered or paused deliveries, pending timers and
unacknowledged alerts stay whatever their age. Registered with ``polaris.retention`` (beat, hourly)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q

from polaris.retention import batches_delete, cutoff_days, retention_register

from .models import FINISHED_DELIVERY_STATUSES, Alert, TriggerExecution, TriggerTimer, WebhookDelivery


def webhook_deliveries_trim(*, batch: int) -> int:
    cutoff = cutoff_days(settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
    if cutoff is None:
        return 0
    finished = WebhookDelivery.objects.filter(status__in=FINISHED_DELIVERY_STATUSES, created_at__lt=cutoff)
    return batches_delete(finished, batch=batch)


def trigger_executions_trim(*, batch: int) -> int:
    cutoff = cutoff_days(settings.TRIGGER_EXECUTION_RETENTION_DAYS)
    if cutoff is None:
        return 0
    return batches_delete(TriggerExecution.objects.filter(created_at__lt=cutoff), batch=batch)


def trigger_timers_trim(*, batch: int) -> int:
    cutoff = cutoff_days(settings.TRIGGER_TIMER_RETENTION_DAYS)
    if cutoff is None:
        return 0
    finished = TriggerTimer.objects.filter(
        Q(state=TriggerTimer.State.FIRED, fired_at__lt=cutoff)
        | Q(state=TriggerTimer.State.CANCELLED, cancelled_at__lt=cutoff)
    )
    return batches_delete(finished, batch=batch)


def alerts_trim(*, batch: int) -> int:
    cutoff = cutoff_days(settings.ALERT_RETENTION_DAYS)
    if cutoff is None:
        return 0
    return batches_delete(Alert.objects.filter(acknowledged_at__lt=cutoff), batch=batch)


def automation_retention_register() -> None:
    """Called from ``AutomationConfig.ready()``."""
    retention_register("webhook_deliveries", webhook_deliveries_trim)
    retention_register("trigger_executions", trigger_executions_trim)
    retention_register("trigger_timers", trigger_timers_trim)
    retention_register("alerts", alerts_trim)
