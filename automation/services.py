"""Automation writes outside the engine: triggers, alerts, webhook replays."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from polaris.accounts.models import User
from polaris.errors import ValidationFailed

from .models import Alert, Trigger, WebhookDelivery
from .selectors import alert_get


@transaction.atomic
def trigger_create(
    *,
    name: str,
    event_type: str,
    predicate: str = "",
    actions: list[dict[str, Any]] | None = None,
    position: int = 100,
    enabled: bool = True,
    description: str = "",
) -> Trigger:
    """Create a trigger after the same validation the admin form runs (predicate and action params)."""
    trigger = Trigger(
        name=name,
        event_type=event_type,
        predicate=predicate,
        actions=actions or [],
        position=position,
        enabled=enabled,
        description=description,
    )
    try:
        trigger.full_clean()
    except ValidationError as exc:
        raise ValidationFailed(details=exc.message_dict) from None
    trigger.save()
    return trigger


def triggers_set_enabled(*, trigger_ids: list[int], enabled: bool) -> int:
    """Enable or disable triggers; returns how many changed."""
    from .engine import trigger_cache_clear

    changed = (
        Trigger.objects.filter(pk__in=trigger_ids)
        .exclude(enabled=enabled)
        .update(enabled=enabled, updated_at=timezone.now())
    )
    trigger_cache_clear()  # update() sends no post_save
    return changed


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


@transaction.atomic
def webhook_delivery_replay(*, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again from scratch (fresh attempt budget), enqueued after commit."""
    from .actions import webhook_enqueue

    WebhookDelivery.objects.filter(pk=delivery_id).update(
        status=WebhookDelivery.Status.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        locked_until=None,
        last_error="",
    )
    transaction.on_commit(partial(webhook_enqueue, delivery_id), robust=True)
    return WebhookDelivery.objects.get(pk=delivery_id)


def webhook_deliveries_due(*, grace_seconds: float, limit: int = 500) -> list[int]:
    """Deliveries overdue by ``grace_seconds``: pending ones whose message was probably lost, and ones
    whose sender died mid-attempt (lease expired)."""
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    Status = WebhookDelivery.Status
    return list(
        WebhookDelivery.objects.filter(
            Q(status=Status.PENDING, next_attempt_at__lte=cutoff)
            | Q(status=Status.DELIVERING, locked_until__lte=cutoff)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
