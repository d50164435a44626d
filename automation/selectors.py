"""Reads for the automation API and admin, scoped like the rest of Polaris."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from outbox.models import OutboxEvent
from polaris.access import agency_scope
from polaris.accounts.models import User
from polaris.errors import NotFound

from .models import Alert, Trigger


def trigger_list() -> QuerySet[Trigger]:
    """Every trigger, in evaluation order (admins only: enforced by the caller)."""
    return Trigger.objects.order_by("position", "id")


def trigger_get(*, trigger_id: Any) -> Trigger:
    try:
        return Trigger.objects.get(pk=int(trigger_id))
    except (ValueError, TypeError, Trigger.DoesNotExist):
        raise NotFound("Trigger not found.") from None


def event_get(*, event_id: Any) -> OutboxEvent:
    try:
        return OutboxEvent.objects.get(pk=uuid.UUID(str(event_id)))
    except (ValueError, TypeError, OutboxEvent.DoesNotExist):
        raise NotFound("Event not found.") from None


def alert_queryset(*, user: User | None) -> QuerySet[Alert]:
    """Admins (and the system) see every alert; agency agents their agency's; clients none (403)."""
    alerts = Alert.objects.select_related("acknowledged_by").order_by("-created_at", "-id")
    agency_id = agency_scope(user, "Clients have no access to alerts.")
    return alerts if agency_id is None else alerts.filter(agency_id=agency_id)


def alert_get(*, user: User | None, alert_id: Any) -> Alert:
    try:
        return alert_queryset(user=user).get(pk=int(alert_id))
    except (ValueError, TypeError, Alert.DoesNotExist):
        raise NotFound("Alert not found.") from None
