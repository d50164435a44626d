"""Automation: triggers and their execution log, alerts, and outgoing webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Trigger(models.Model):
    """When an event of ``event_type`` matches ``predicate``, run ``actions`` in order.

    ``actions`` is a JSON list of ``{"type": ..., "params": {...}}``; the types and their params come
    from ``automation.actions``. Triggers are evaluated in ``position`` order. The event type, predicate
    and every action's params are validated by ``automation.rules.trigger_validate`` (the admin form and
    ``automation.services.trigger_create`` run it), so the admin shows the errors the engine would hit.
    """

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    event_type = models.CharField(
        max_length=64, help_text="The event type this trigger listens to, e.g. TaskStateChanged."
    )
    predicate = models.TextField(
        blank=True,
        help_text='An expression over the event, e.g. task_type == "intake" and new_state == "completed". '
        "Blank matches every event of the type.",
    )
    actions = models.JSONField(
        default=list, blank=True, help_text='A list of {"type": ..., "params": {...}}.'
    )
    position = models.PositiveIntegerField(default=100, help_text="Lower positions are evaluated first.")
    enabled = models.BooleanField(default=True)
    agency = models.ForeignKey(
        "accounts.Agency",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="triggers",
        help_text="When set, the trigger sees only this agency's events.",
    )
    # Timed triggers (``wait_minutes`` set): a match sets a timer instead of acting; see automation/timers.py.
    wait_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Act this many minutes after the matching event instead of at once (blank: at once).",
    )
    wait_calendar = models.ForeignKey(
        "sla.BusinessCalendar",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Count the wait in this calendar's working time (blank: wall-clock, 24x7).",
    )
    unless = models.JSONField(
        default=list,
        blank=True,
        help_text="Event types that cancel the wait when they happen to the same aggregate meanwhile.",
    )
    version = models.PositiveIntegerField(default=1, help_text="Bumped by every change.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("position", "id")
        indexes = [
            models.Index(
                fields=["event_type", "position"], condition=Q(enabled=True), name="trigger_enabled_idx"
            )
        ]

    def __str__(self) -> str:
        return self.name


class TriggerExecution(models.Model):
    """What one trigger did for one event. At most one per (trigger, event): the unique constraint
    commits together with the actions' effects, so a redelivered event cannot run a trigger twice."""

    class Outcome(models.TextChoices):
        MATCHED = "matched", "Matched"
        NOT_MATCHED = "not_matched", "Not matched"
        REFUSED = "refused", "Matched, an action was refused"
        ERROR = "error", "Error"
        LOOP_PREVENTED = "loop_prevented", "Loop prevented"
        SCHEDULED = "scheduled", "Matched, timer set"

    # SET_NULL: deleting a trigger keeps its history; ``trigger_name`` is filled in when it goes.
    trigger = models.ForeignKey(
        Trigger, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions"
    )
    trigger_name = models.CharField(
        max_length=200, blank=True, help_text="The trigger's name, kept when the trigger is deleted."
    )
    trigger_version = models.PositiveIntegerField(default=1, help_text="The trigger's version that ran.")
    event = models.ForeignKey(
        "outbox.OutboxEvent", on_delete=models.CASCADE, related_name="trigger_executions"
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    duration_ms = models.FloatField(default=0)
    error = models.TextField(blank=True)
    action_results = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=["trigger", "event"], name="trigger_execution_once_per_event"),
        ]
        indexes = [
            models.Index(fields=["event"], name="trigger_execution_event_idx"),
            # The stats API and dashboard count the last 24 h; the admin lists newest first.
            models.Index(fields=["created_at"], name="trigger_execution_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.trigger_id} on {self.event_id}: {self.outcome}"


class TriggerTimer(models.Model):
    """A timed trigger waiting: set when its event matched, fired (or cancelled) later.

    ``pending`` rows are claimed when due with ``SELECT … FOR UPDATE SKIP LOCKED`` (a partial index keeps
    that O(batch)); firing writes a ``TimerFired`` outbox event in the same transaction as the state change,
    and the engine runs the trigger's actions for that event under the dispatch ledger.
    ``unless`` is the trigger's list when the timer was set (kept in step when the trigger changes).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        FIRED = "fired", "Fired"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="timers")
    trigger_version = models.PositiveIntegerField(default=1)
    # PROTECT: the history's retention never drops the event a timer was set by (a pending one still
    # needs it to fire); finished timers go with their own retention (automation.retention), then the event.
    event = models.ForeignKey(
        "outbox.OutboxEvent", on_delete=models.PROTECT, related_name="timers_set", help_text="What matched."
    )
    aggregate_type = models.CharField(max_length=32)
    aggregate_id = models.UUIDField()
    task = models.ForeignKey(
        "workflow.Task", null=True, blank=True, on_delete=models.CASCADE, related_name="timers"
    )
    unless = models.JSONField(default=list, blank=True)
    due_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    fired_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        "outbox.OutboxEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("due_at", "id")
        constraints = [
            models.UniqueConstraint(fields=["trigger", "event"], name="trigger_timer_once_per_event"),
        ]
        indexes = [
            # The claim and the next-due lookup read only pending rows: O(batch), not O(history).
            models.Index(fields=["due_at"], condition=Q(state="pending"), name="trigger_timer_due_idx"),
            models.Index(
                fields=["aggregate_id"], condition=Q(state="pending"), name="trigger_timer_pending_agg_idx"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.trigger_id} on {self.aggregate_type}:{self.aggregate_id} at {self.due_at}: {self.state}"
        )


class Alert(models.Model):
    """Something a person should look at, raised by automation. Agency-scoped when ``agency`` is set."""

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"

    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    message = models.CharField(max_length=500)
    agency = models.ForeignKey(
        "accounts.Agency", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    event = models.ForeignKey(
        "outbox.OutboxEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    trigger = models.ForeignKey(
        Trigger, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    created_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["agency", "-created_at"], name="alert_agency_created_idx")]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message}"


class WebhookEndpoint(models.Model):
    """A receiver of signed event deliveries (Standard Webhooks), belonging to an agency (``agency``
    ``None``: a global endpoint, admins' only). It receives only events of its agency (a global one: of
    every agency).

    ``event_types`` is a subscription: an enabled endpoint receives every event of those types in its
    agency, with no trigger (``automation.webhooks.subscriptions``); empty subscribes to nothing, and the
    endpoint gets only what ``webhook`` actions of triggers send it. An event reaches an endpoint at most
    once (the unique ``(endpoint, event)`` on deliveries), however many ways select it.

    ``secret`` (``whsec_<base64>``) signs every request; it is stored as it must be to compute an HMAC,
    shown once when created or rotated and never displayed again. After a rotation ``previous_secret``
    signs too until ``previous_secret_until`` (both signatures in ``webhook-signature``).

    Health: ``consecutive_failures`` counts failed attempts since the last success; at
    ``WEBHOOK_DISABLE_AFTER_FAILURES`` the endpoint is disabled (``disabled_at``), an alert is raised and
    its deliveries wait as ``paused`` until it is enabled again.
    """

    name = models.CharField(max_length=200, unique=True)
    agency = models.ForeignKey(
        "accounts.Agency",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
        help_text="Receives only this agency's events (blank: a global endpoint, every agency's).",
    )
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=200, help_text="whsec_<base64>; never displayed after creation.")
    previous_secret = models.CharField(max_length=200, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    ordered = models.BooleanField(
        default=True,
        help_text="Deliver each aggregate's events in sequence order (a failure holds back its later ones).",
    )
    event_types = models.JSONField(
        default=list,
        blank=True,
        help_text="Event types this endpoint subscribes to (every such event of its agency is delivered); "
        "empty: none, only what triggers send.",
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when the endpoint was disabled for failing (its deliveries wait).",
    )
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        indexes = [
            # The subscription handler's lookup: enabled (or health-paused) endpoints of an agency.
            models.Index(fields=["agency"], name="webhook_endpoint_agency_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def serves(self, agency_id: object) -> bool:
        """Is an event of ``agency_id`` (as its payload spells it) this endpoint's to receive?"""
        return self.agency_id is None or str(self.agency_id) == str(agency_id)

    def filters(self, event_type: str) -> bool:
        """Does the event-type filter let ``event_type`` through (whether enabled or not)?"""
        return not self.event_types or event_type in self.event_types

    def accepts(self, event_type: str) -> bool:
        return self.enabled and self.filters(event_type)

    def signing_secrets(self, *, now: datetime) -> list[str]:
        """The secrets that sign a request sent at ``now``: the current one, and the previous one during
        a rotation's grace period."""
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            secrets.append(self.previous_secret)
        return secrets

    def clean(self) -> None:
        # The URL's form is checked by the admin form (``automation.webhooks.transport.url_check_syntax``).
        errors: dict[str, list[str]] = {}
        if not isinstance(self.event_types, list) or not all(isinstance(t, str) for t in self.event_types):
            errors["event_types"] = ["A list of event type names."]
        if errors:
            raise ValidationError(errors)


UNDONE_DELIVERY_STATUSES = ("pending", "delivering", "paused")
FINISHED_DELIVERY_STATUSES = ("delivered", "failed", "refused", "dead")


class WebhookDelivery(models.Model):
    """One event sent (or being sent) to one endpoint; every attempt is a ``WebhookAttempt`` row.

    ``aggregate_type``/``aggregate_id``/``sequence`` are the event's, copied so the "no earlier undone
    delivery of this aggregate to this endpoint" check of an ordered endpoint is one index probe.
    ``attempts`` counts every attempt ever made; ``round_start`` is ``attempts`` when the current round
    began (creation or a redelivery), so the retry schedule restarts without erasing history.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERING = "delivering", "Delivering"
        PAUSED = "paused", "Paused (endpoint disabled)"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (not retried)"
        REFUSED = "refused", "Refused (SSRF guard)"
        DEAD = "dead", "Dead (retries exhausted)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # PROTECT: an undelivered or paused delivery still has to send its event; finished deliveries go with
    # their own retention (automation.retention), and only then may the history's retention take the event.
    event = models.ForeignKey(
        "outbox.OutboxEvent", on_delete=models.PROTECT, related_name="webhook_deliveries"
    )
    aggregate_type = models.CharField(max_length=32, default="")
    aggregate_id = models.UUIDField(null=True, blank=True)
    sequence = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    round_start = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_ms = models.FloatField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # One event reaches one endpoint once, whether a subscription or a trigger (or both) chose it.
            models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once_per_event"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "delivering"]),
                name="webhook_delivery_due_idx",
            ),
            # The ordering probe: an earlier undone delivery of the same aggregate to the same endpoint.
            models.Index(
                fields=["endpoint", "aggregate_type", "aggregate_id", "sequence"],
                condition=Q(status__in=list(UNDONE_DELIVERY_STATUSES)),
                name="webhook_delivery_undone_idx",
            ),
            # The stats API and dashboard count the last 24 h's failures; the admin lists newest first.
            models.Index(fields=["created_at"], name="webhook_delivery_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id}: {self.status}"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: when, how long, what came back. Never rewritten; trimmed after
    ``WEBHOOK_ATTEMPT_RETENTION_DAYS`` once its delivery is finished."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.FloatField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=16)

    class Meta:
        ordering = ("delivery", "number")
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number_uniq"),
        ]
        indexes = [models.Index(fields=["started_at"], name="webhook_attempt_started_idx")]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}: {self.outcome}"
