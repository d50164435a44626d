"""Retention of the webhook attempt log: attempts of finished deliveries past a number of days."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from ..models import FINISHED_DELIVERY_STATUSES, WebhookAttempt


def webhook_attempts_trim(*, batch: int = 5000) -> int:
    """Delete attempts older than ``WEBHOOK_ATTEMPT_RETENTION_DAYS`` (0 keeps them all) whose delivery
    is finished (an undone delivery keeps its whole log); in batches, each its own statement. Returns
    how many were deleted."""
    days = settings.WEBHOOK_ATTEMPT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(
            WebhookAttempt.objects.filter(
                started_at__lt=cutoff, delivery__status__in=FINISHED_DELIVERY_STATUSES
            ).values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        deleted += WebhookAttempt.objects.filter(pk__in=ids).delete()[0]
