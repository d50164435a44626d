"""The outbox: every domain event, written in the transaction that caused it, and the dispatch ledger."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Func, Q
from django.utils import timezone


class CurrentTransactionId(Func):
    """``pg_current_xact_id()`` as a bigint: the writing transaction's (top-level) id, the key of the
    event feed's watermark (``outbox.feed``)."""

    template = "(pg_current_xact_id()::text::bigint)"
    output_field = models.BigIntegerField()


class OutboxEvent(models.Model):
    """A domain event, written in the transaction that caused it; also the system's event history.

    Dispatch state lives on the row: the dispatcher claims ``pending`` rows that are due, marks them
    ``processing`` under a lease, and ends them ``dispatched`` or, after too many failures, ``dead``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        DISPATCHED = "dispatched", "Dispatched"
        DEAD = "dead", "Dead"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=64)
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.UUIDField()
    sequence = models.PositiveIntegerField()
    occurred_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    correlation_id = models.CharField(max_length=64)
    causation_id = models.UUIDField(null=True, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    payload = models.JSONField(default=dict)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Set by the database on insert (never by Python): which transaction wrote the row.
    xid = models.BigIntegerField(db_default=CurrentTransactionId(), editable=False)

    class Meta:
        ordering = ("occurred_at", "aggregate_id", "sequence")
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_type", "aggregate_id", "sequence"],
                name="outbox_aggregate_sequence_uniq",
            ),
        ]
        indexes = [
            # Claims scan only rows still to do: O(backlog), not O(history).
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "processing"]),
                name="outbox_due_idx",
            ),
            models.Index(
                fields=["aggregate_type", "aggregate_id", "sequence"],
                condition=Q(status__in=["pending", "processing"]),
                name="outbox_undone_aggregate_idx",
            ),
            models.Index(fields=["occurred_at"], condition=Q(status="dead"), name="outbox_dead_idx"),
            # Retention walks dispatched events oldest first (outbox.retention.history_trim); written when
            # an event is dispatched, not on the writer's insert.
            models.Index(
                fields=["occurred_at", "id"],
                condition=Q(status="dispatched"),
                name="outbox_dispatched_age_idx",
            ),
            models.Index(fields=["correlation_id"], name="outbox_correlation_idx"),
            # The feed's rounds take unpositioned events in (xid, sequence, id) order from the watermark.
            models.Index(fields=["xid", "sequence", "id"], name="outbox_xid_seq_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_type}:{self.aggregate_id} #{self.sequence}"

    def envelope(self) -> dict:
        """The event as handlers and webhooks see it (JSON-ready)."""
        return {
            "id": str(self.id),
            "event_type": self.event_type,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": str(self.aggregate_id),
            "sequence": self.sequence,
            "occurred_at": self.occurred_at.isoformat(),
            "actor_id": self.actor_id,
            "correlation_id": self.correlation_id,
            "causation_id": str(self.causation_id) if self.causation_id else None,
            "depth": self.depth,
            "payload": self.payload,
        }

    def payload_uuid(self, key: str) -> uuid.UUID | None:
        """The UUID the payload names under ``key``; None when it is absent or not a UUID."""
        value = (self.payload or {}).get(key)
        try:
            return uuid.UUID(str(value)) if value else None
        except ValueError:
            return None


class HandledEvent(models.Model):
    """Ledger of (handler, event) pairs already handled.

    A handler's effects and its ledger row commit in one transaction; the unique constraint makes a
    redelivered event a no-op for that handler (effectively-once effects on at-least-once delivery).
    """

    handler = models.CharField(max_length=100)
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="handled_by")
    handled_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "handler"], name="handled_event_once_per_handler"),
        ]

    def __str__(self) -> str:
        return f"{self.handler} handled {self.event_id}"


class FeedEntry(models.Model):
    """An event's position in the event feed: one total order, assigned only to committed events and
    in commit-safe order by ``outbox.feed.feed_sequence`` (so a cursor never passes an event that
    commits later). Positions are dense; deleting an event (retention) leaves a gap."""

    position = models.BigIntegerField(primary_key=True)
    event = models.OneToOneField(OutboxEvent, on_delete=models.CASCADE, related_name="feed_entry")

    class Meta:
        verbose_name_plural = "feed entries"

    def __str__(self) -> str:
        return f"{self.position}: {self.event_id}"


class FeedState(models.Model):
    """One row: the watermark ``(watermark, resume_sequence, resume_id)`` below which, in the order
    ``(xid, sequence, id)``, every committed event already has a position (the resume columns continue
    a backlog within one transaction; ``outbox.feed``)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    watermark = models.BigIntegerField(default=0)
    resume_sequence = models.PositiveIntegerField(default=0)
    resume_id = models.UUIDField(default=uuid.UUID(int=0))

    def __str__(self) -> str:
        return f"feed watermark {self.watermark}"
