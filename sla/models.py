"""SLA configuration, business calendars and the per-task SLA record."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from workflow.models import Task, TaskState

from .calendar import DEFAULT_WORKING_HOURS, WEEKDAYS, Calendar, CalendarError
from .defaults import default_pause_states, default_warning_percentages

# A task can be paused only in a state where work could resume; terminal states stop the clock instead.
PAUSABLE_STATES = (TaskState.NEW, TaskState.IN_PROGRESS, TaskState.BLOCKED)


def _default_working_hours() -> dict[str, list[list[str]]]:
    return {day: [list(pair) for pair in pairs] for day, pairs in DEFAULT_WORKING_HOURS.items()}


# Migration 0001 refers to these names; the values live in ``sla.defaults``.
def _default_warning_percentages() -> list[int]:
    return default_warning_percentages()


def _default_pause_states() -> list[str]:
    return default_pause_states()


class BusinessCalendar(models.Model):
    """Working hours per weekday in a time zone, minus holidays; SLA clocks only run in working time.

    ``holidays`` lists explicit dates; ``country_code`` (ISO 3166, optionally with ``subdivision``) adds
    the public holidays the ``holidays`` package knows for that country, year by year.
    """

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", help_text="An IANA zone, e.g. Europe/London.")
    working_hours = models.JSONField(
        default=_default_working_hours,
        help_text='Per weekday, local [start, end] intervals: {"mon": [["09:00", "17:00"]], …, "sun": []}.',
    )
    holidays = models.JSONField(default=list, blank=True, help_text='ISO dates, e.g. ["2026-12-25"].')
    country_code = models.CharField(
        max_length=8, blank=True, help_text="Also skip this country's public holidays (e.g. GB, US, DE)."
    )
    subdivision = models.CharField(max_length=16, blank=True, help_text="Optional region, e.g. SCT, CA.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def definition(self) -> dict[str, Any]:
        """The JSON an SLA record snapshots at start (see ``sla.calendar``)."""
        return {
            "time_zone": self.time_zone,
            "working_hours": self.working_hours,
            "holidays": sorted(self.holidays or []),
            "country_code": self.country_code.upper(),
            "subdivision": self.subdivision,
        }

    def clean(self) -> None:
        hours = self.working_hours
        if not isinstance(hours, dict) or set(hours) - set(WEEKDAYS):
            raise ValidationError({"working_hours": f"Use the weekday keys {', '.join(WEEKDAYS)}."})
        if not isinstance(self.holidays, list):
            raise ValidationError({"holidays": "A list of ISO dates."})
        try:
            Calendar.from_definition(self.definition())
        except CalendarError as exc:
            field = "time_zone" if "zone" in str(exc) else "working_hours"
            if "Holidays" in str(exc):
                field = "holidays"
            elif "holidays package" in str(exc):
                field = "country_code"
            raise ValidationError({field: str(exc)}) from None


class SLAConfig(models.Model):
    """How long a kind of task may take: ``target_minutes`` of (business) time from creation to completion.

    Matching: the most specific active config wins — service area and task type, then task type, then
    service area, then neither (empty means "any"). Two active configs with the same area and type would
    tie, so they are refused (``clean()``, the services, and a partial unique constraint).
    """

    name = models.CharField(max_length=100, unique=True)
    service_area = models.SlugField(max_length=64, blank=True, help_text="Empty: any service area.")
    task_type = models.SlugField(max_length=64, blank=True, help_text="Empty: any task type.")
    target_minutes = models.PositiveIntegerField()
    warning_percentages = models.JSONField(
        default=_default_warning_percentages,
        blank=True,
        help_text="Percentages of the target (1-99) at which an SLAWarning event is written.",
    )
    pause_states = models.JSONField(
        default=_default_pause_states, blank=True, help_text="Task states in which the clock stops."
    )
    calendar = models.ForeignKey(
        BusinessCalendar,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="sla_configs",
        help_text="Empty: the clock runs 24x7.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        verbose_name = "SLA config"
        constraints = [
            models.UniqueConstraint(
                fields=["service_area", "task_type"],
                condition=Q(active=True),
                name="sla_config_one_active_per_scope",
                violation_error_message="Another active SLA config has the same service area and task type.",
            ),
            models.CheckConstraint(condition=Q(target_minutes__gt=0), name="sla_config_target_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def specificity(self) -> int:
        """3: area and type, 2: type, 1: area, 0: any."""
        return (2 if self.task_type else 0) + (1 if self.service_area else 0)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.target_minutes is not None and self.target_minutes <= 0:
            errors["target_minutes"] = "Must be at least one minute."
        percentages = self.warning_percentages
        if not isinstance(percentages, list) or not all(
            isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100
            for value in percentages
        ):
            errors["warning_percentages"] = "A list of whole percentages between 1 and 99."
        elif len(set(percentages)) != len(percentages):
            errors["warning_percentages"] = "Percentages must be distinct."
        states = self.pause_states
        if not isinstance(states, list) or not all(state in PAUSABLE_STATES for state in states):
            errors["pause_states"] = f"A list of task states among: {', '.join(PAUSABLE_STATES)}."
        if errors:
            raise ValidationError(errors)
        if isinstance(percentages, list):
            self.warning_percentages = sorted(percentages)
        if self.active:
            clash = (
                SLAConfig.objects.filter(
                    active=True, service_area=self.service_area, task_type=self.task_type
                )
                .exclude(pk=self.pk)
                .first()
            )
            if clash is not None:
                raise ValidationError(
                    f"The active config {clash.name!r} already covers service area "
                    f"{self.service_area or '(any)'!r} and task type {self.task_type or '(any)'!r}."
                )


class SLARecordStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    MET = "met", "Met"
    BREACHED = "breached", "Breached"
    CANCELLED = "cancelled", "Cancelled"


class SLARecord(models.Model):
    """One task's SLA clock. Target, calendar, warnings and pause states are snapshotted at start, so editing
    a config never rewrites a running record.

    ``due_at`` is pushed back by the working time spent paused (``paused_seconds``). ``next_warning_at``
    is the instant of the next unsent warning percentage (``None`` when none is left). ``version`` is the
    position in this record's own event stream (``SLAWarning``, ``SLABreached``, ``SLAMet``,
    ``SLARecalculated``; aggregate ``sla_record``).
    """

    aggregate_type = "sla_record"
    Status = SLARecordStatus

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="sla_record")
    config = models.ForeignKey(SLAConfig, on_delete=models.PROTECT, related_name="records")
    target_minutes = models.PositiveIntegerField()
    calendar_snapshot = models.JSONField(null=True, blank=True)
    warning_percentages = models.JSONField(default=list)
    pause_states = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=SLARecordStatus.choices, default=SLARecordStatus.RUNNING)
    started_at = models.DateTimeField()
    due_at = models.DateTimeField()
    next_warning_at = models.DateTimeField(null=True, blank=True)
    paused_seconds = models.PositiveIntegerField(default=0)
    paused_at = models.DateTimeField(null=True, blank=True)
    warnings_sent = models.JSONField(default=list, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0, editable=False)
    # Which measurement the record's clock columns hold: 1 as started; a repair (``sla.repair_apply``) that
    # re-measures the record copies the measurement it replaces into ``SLARecordVersion`` and adds one.
    measurement = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ("due_at", "id")
        verbose_name = "SLA record"
        indexes = [
            # The scan reads only running records that are due: O(due), not O(table).
            models.Index(fields=["due_at"], condition=Q(status="running"), name="sla_record_running_due_idx"),
            models.Index(
                fields=["next_warning_at"],
                condition=Q(status="running", next_warning_at__isnull=False),
                name="sla_record_warning_due_idx",
            ),
            models.Index(fields=["status"], name="sla_record_status_idx"),
            # A repair's scope: the open records (of a config), and records closed in a window.
            models.Index(
                fields=["config", "id"], condition=Q(stopped_at__isnull=True), name="sla_record_open_idx"
            ),
            models.Index(
                fields=["stopped_at"], condition=Q(stopped_at__isnull=False), name="sla_record_stopped_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"SLA {self.status} for task {self.task_id}"

    @property
    def calendar(self) -> Calendar | None:
        return Calendar.from_definition(self.calendar_snapshot)


class SLARepairState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class SLARepair(models.Model):
    """One application of an SLA repair: a proposed change (or a plain re-measurement) applied to the
    records in a scope, batch by batch (``sla.repair_apply``).

    ``change`` and ``scope`` are the normalised request (``sla.repair.Proposal`` / ``RepairScope``);
    ``as_of`` is the instant breaches are judged at, so the application judges exactly as its preview did.
    ``cursor`` is the last record applied (records go in id order), committed with each batch: a retry
    resumes after it and never re-measures a record twice.
    """

    State = SLARepairState

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    change = models.JSONField()
    scope = models.JSONField()
    as_of = models.DateTimeField()
    state = models.CharField(max_length=16, choices=SLARepairState.choices, default=SLARepairState.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    total = models.PositiveIntegerField(default=0, help_text="Records in scope when it was requested.")
    processed = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    newly_breached = models.PositiveIntegerField(default=0)
    no_longer_breached = models.PositiveIntegerField(default=0)
    cursor = models.UUIDField(null=True, blank=True, editable=False)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "id")
        verbose_name = "SLA repair"

    def __str__(self) -> str:
        return f"SLA repair {self.pk} ({self.state})"


class SLARecordVersion(models.Model):
    """A measurement of an SLA record that a repair replaced or made: "what we promised then" (number 1,
    the measurement taken at start) beside "what the corrected policy says" (2, 3, … one per repair).

    The record itself always holds its current measurement (``SLARecord.measurement``); versions are only
    written when a repair changes a record, so an untouched record has none.
    """

    record = models.ForeignKey(SLARecord, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    repair = models.ForeignKey(
        SLARepair, null=True, blank=True, on_delete=models.PROTECT, related_name="versions"
    )
    target_minutes = models.PositiveIntegerField()
    calendar_snapshot = models.JSONField(null=True, blank=True)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=SLARecordStatus.choices)
    breached_at = models.DateTimeField(null=True, blank=True)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ("record", "number")
        verbose_name = "SLA record version"
        constraints = [
            models.UniqueConstraint(fields=["record", "number"], name="sla_record_version_number_unique"),
            # One new measurement per record and repair, whatever retries happen.
            models.UniqueConstraint(
                fields=["record", "repair"],
                condition=Q(repair__isnull=False),
                name="sla_record_version_once_per_repair",
            ),
        ]

    def __str__(self) -> str:
        return f"SLA record {self.record_id} measurement {self.number}"
