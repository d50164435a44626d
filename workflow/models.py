"""Tasks and action plans (state machines defined with django-fsm) and the transactional outbox.

The transition methods are the single source of truth for the graphs: services, the API's metadata
and the docs' diagrams all introspect them. A transition method takes ``context`` (an ``EventContext``);
the ``post_transition`` receiver in ``workflow.receivers`` turns it into an outbox row in the same
transaction.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition

from . import guards
from .policies import is_staff_for, may_cancel_task


class TaskState(models.TextChoices):
    NEW = "new", "New"
    IN_PROGRESS = "in_progress", "In progress"
    BLOCKED = "blocked", "Blocked"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class TaskPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class ActionPlanState(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    ARCHIVED = "archived", "Archived"


class ActionPlan(FSMModelMixin, models.Model):
    """A client's plan: a set of tasks an agency works through. ``draft → active → archived``."""

    aggregate_type = "action_plan"
    # Columns a transition may change: the outbox service writes exactly these in its compare-and-swap
    # UPDATE, so a transition method that sets another field must list it here.
    transition_fields = ("state", "version", "updated_at")
    # The event the latest creation or transition wrote (set by the outbox service; not a column).
    recorded_event: "OutboxEvent"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    client = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="action_plans"
    )
    agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="action_plans")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = FSMField(
        default=ActionPlanState.DRAFT, choices=ActionPlanState.choices, protected=True, db_index=True
    )
    # Position in this aggregate's event stream: the sequence of its latest event.
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "id")
        indexes = [models.Index(fields=["agency", "state"], name="plan_agency_state_idx")]

    def __str__(self) -> str:
        return self.title

    @transition(
        field=state,
        source=ActionPlanState.DRAFT,
        target=ActionPlanState.ACTIVE,
        conditions=[guards.has_tasks],
        permission=is_staff_for,
    )
    def activate(self, *, context) -> None:
        """Put a drafted plan to work."""

    @transition(
        field=state,
        source=ActionPlanState.ACTIVE,
        target=ActionPlanState.ARCHIVED,
        conditions=[guards.all_tasks_closed],
        permission=is_staff_for,
    )
    def archive(self, *, context) -> None:
        """Close a plan whose tasks are all completed or cancelled."""

    @transition(
        field=state,
        source=ActionPlanState.DRAFT,
        target=ActionPlanState.ARCHIVED,
        permission=is_staff_for,
    )
    def archive_draft(self, *, context) -> None:
        """Shelve a plan that never went live."""


class Task(FSMModelMixin, models.Model):
    """A unit of work for a client. ``new → in_progress → completed``, with ``blocked`` and ``cancelled``."""

    aggregate_type = "task"
    transition_fields = ("state", "version", "blocked_reason", "updated_at")
    recorded_event: "OutboxEvent"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    task_type = models.SlugField(max_length=64)
    service_area = models.SlugField(max_length=64, blank=True)
    priority = models.CharField(max_length=16, choices=TaskPriority.choices, default=TaskPriority.NORMAL)
    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tasks")
    agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="tasks")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tasks",
    )
    action_plan = models.ForeignKey(
        ActionPlan, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks"
    )
    blocked_reason = models.TextField(blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = FSMField(default=TaskState.NEW, choices=TaskState.choices, protected=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "id")
        indexes = [
            models.Index(fields=["agency", "state"], name="task_agency_state_idx"),
            models.Index(fields=["client", "state"], name="task_client_state_idx"),
            models.Index(fields=["state"], name="task_state_idx"),
            models.Index(fields=["-created_at", "id"], name="task_created_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @transition(
        field=state,
        source=TaskState.NEW,
        target=TaskState.IN_PROGRESS,
        conditions=[guards.has_assignee],
        permission=is_staff_for,
    )
    def start(self, *, context) -> None:
        """Begin work; someone must be assigned."""

    @transition(
        field=state,
        source=[TaskState.NEW, TaskState.IN_PROGRESS],
        target=TaskState.BLOCKED,
        conditions=[guards.has_blocked_reason],
        permission=is_staff_for,
    )
    def block(self, *, context) -> None:
        """Park the task; ``blocked_reason`` says why."""

    @transition(
        field=state,
        source=TaskState.BLOCKED,
        target=TaskState.IN_PROGRESS,
        conditions=[guards.has_assignee],
        permission=is_staff_for,
    )
    def resume(self, *, context) -> None:
        self.blocked_reason = ""

    @transition(
        field=state,
        source=TaskState.IN_PROGRESS,
        target=TaskState.COMPLETED,
        permission=is_staff_for,
    )
    def complete(self, *, context) -> None:
        """Finish the work."""

    @transition(
        field=state,
        source=[TaskState.NEW, TaskState.IN_PROGRESS, TaskState.BLOCKED],
        target=TaskState.CANCELLED,
        permission=may_cancel_task,
    )
    def cancel(self, *, context) -> None:
        self.blocked_reason = ""


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
            models.Index(fields=["correlation_id"], name="outbox_correlation_idx"),
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


class IdempotencyKey(models.Model):
    """The first response to a create request sent with ``Idempotency-Key``, replayed for repeats."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    scope = models.CharField(max_length=200, help_text="The method and route the key was used on.")
    request_hash = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "scope", "key"], name="idempotency_key_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
