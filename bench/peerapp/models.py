"""A task of the same shape as ``workflow.Task``, with the state machine written as django-fsm's docs show.

The primary key is an integer: django-fsm-log's ``StateLog.object_id`` is a ``PositiveIntegerField``.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, transition
from django_fsm_log.decorators import fsm_log_by, fsm_log_description


def is_staff_for(instance: "PeerTask", user) -> bool:
    return user.role == "admin" or (user.role == "agency" and user.agency_id == instance.agency_id)


def has_assignee(instance: "PeerTask") -> bool:
    return instance.assignee_id is not None


def has_blocked_reason(instance: "PeerTask") -> bool:
    return bool(instance.blocked_reason.strip())


class PeerTask(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    task_type = models.SlugField(max_length=64)
    service_area = models.SlugField(max_length=64, blank=True)
    priority = models.CharField(max_length=16, default="normal")
    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    blocked_reason = models.TextField(blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    state = FSMField(default="new", protected=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["agency", "state"], name="peer_task_agency_state_idx")]

    def __str__(self) -> str:
        return self.title

    @fsm_log_by
    @fsm_log_description
    @transition(
        field=state, source="new", target="in_progress", conditions=[has_assignee], permission=is_staff_for
    )
    def start(self, by=None, description=None) -> None:
        pass

    @fsm_log_by
    @fsm_log_description
    @transition(
        field=state,
        source=["new", "in_progress"],
        target="blocked",
        conditions=[has_blocked_reason],
        permission=is_staff_for,
    )
    def block(self, by=None, description=None) -> None:
        pass

    @fsm_log_by
    @fsm_log_description
    @transition(
        field=state,
        source="blocked",
        target="in_progress",
        conditions=[has_assignee],
        permission=is_staff_for,
    )
    def resume(self, by=None, description=None) -> None:
        self.blocked_reason = ""

    @fsm_log_by
    @fsm_log_description
    @transition(field=state, source="in_progress", target="completed", permission=is_staff_for)
    def complete(self, by=None, description=None) -> None:
        pass

    @fsm_log_by
    @fsm_log_description
    @transition(
        field=state, source=["new", "in_progress", "blocked"], target="cancelled", permission=is_staff_for
    )
    def cancel(self, by=None, description=None) -> None:
        self.blocked_reason = ""


class PeerEvent(models.Model):
    """The outbox row the ``post_transition`` receiver writes: the same envelope as ``OutboxEvent``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=64)
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.BigIntegerField()
    sequence = models.PositiveIntegerField()
    occurred_at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    correlation_id = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, default="pending")
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["aggregate_id", "sequence"], name="peer_event_stream_position")
        ]
        indexes = [
            models.Index(
                fields=["occurred_at"], name="peer_event_pending_idx", condition=models.Q(status="pending")
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_id}#{self.sequence}"


class PeerHandledMessage(models.Model):
    """The idempotent consumer's ledger: Celery may deliver a relayed message twice."""

    message_id = models.UUIDField(unique=True)
    handled_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return str(self.message_id)
