"""Retention: the dispatch ledger need not grow forever, and an operator may bound the history.

- Ledger rows (``HandledEvent``) of events dispatched more than ``OUTBOX_LEDGER_RETENTION_DAYS`` ago
  can no longer matter: only a claimed or a dead event is ever handled again (a lease that ran out,
  a replay), and a dispatched event is neither. Dead events keep theirs (a replay skips the handlers
  that already handled them).
- The event history stays unless ``OUTBOX_EVENT_RETENTION_DAYS`` is set; then dispatched events older
  than that go (with what refers to them by cascade: ledger rows, feed positions, trigger executions,
  webhook deliveries). Undone and dead events are never dropped.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import HandledEvent, OutboxEvent


def ledger_trim(*, batch: int = 10_000) -> int:
    """Delete ledger rows of events dispatched before the retention; returns how many."""
    days = settings.OUTBOX_LEDGER_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while ids := list(
        HandledEvent.objects.filter(
            event__status=OutboxEvent.Status.DISPATCHED, event__dispatched_at__lt=cutoff
        ).values_list("pk", flat=True)[:batch]
    ):
        deleted += HandledEvent.objects.filter(pk__in=ids).delete()[0]
    return deleted


def history_trim(*, batch: int = 1_000) -> int:
    """Delete dispatched events older than ``OUTBOX_EVENT_RETENTION_DAYS`` (0: never); returns how many."""
    days = settings.OUTBOX_EVENT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while ids := list(
        OutboxEvent.objects.filter(status=OutboxEvent.Status.DISPATCHED, occurred_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:batch]
    ):
        OutboxEvent.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    return deleted
