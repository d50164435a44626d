"""Alerts: raised by the engine and the ``emit_alert`` action, acknowledged by people."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from outbox.models import OutboxEvent
from polaris.accounts.models import User

from .models import Alert, Trigger
from .selectors import alert_get

# The logger operators already filter on (docs/automation.md): alerts were first raised by the actions.
logger = logging.getLogger("automation.actions")


def alert_raise(
    *, severity: str, message: str, event: OutboxEvent | None = None, trigger: Trigger | None = None
) -> Alert:
    """Write an alert, scoped to the agency the event concerns, and log it."""
    agency_id = event.payload_uuid("agency_id") if event is not None else None
    alert = Alert.objects.create(
        severity=severity, message=message, agency_id=agency_id, event=event, trigger=trigger
    )
    logger.log(
        logging.WARNING if severity != Alert.Severity.INFO else logging.INFO,
        "automation alert: %s",
        message,
        extra={
            "alert_id": alert.pk,
            "severity": severity,
            "agency_id": str(agency_id) if agency_id else None,
            "event_id": str(event.id) if event is not None else None,
            "correlation_id": event.correlation_id if event is not None else None,
            "trigger_id": trigger.pk if trigger is not None else None,
        },
    )
    return alert


@transaction.atomic
def alert_acknowledge(*, alert_id: Any, actor: User) -> Alert:
    """Mark an alert in the actor's scope as seen (idempotent: the first acknowledgement stands)."""
    alert = alert_get(user=actor, alert_id=alert_id)
    Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=actor
    )
    alert.refresh_from_db()
    return alert


def alerts_acknowledge(*, alert_ids: list[int], actor: User) -> int:
    """Acknowledge several alerts at once (admin bulk action); returns how many were still open."""
    return Alert.objects.filter(pk__in=alert_ids, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=actor
    )
