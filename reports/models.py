"""The rollup tables: per-hour counts the reports read, and the per-task fold they are derived from.

A task's rollup rows are a pure function of its fold (``reports.fold``), and its fold is a function of
the *set* of its events, whatever order they arrive in and however often: so the rollups equal a
recomputation from the event history (``reports.rebuild``) after any delivery order, redelivery or late
event. Nothing personal is stored (ids, classification, instants), so erasure has nothing to reach here.
"""

from __future__ import annotations

from django.db import models


class TaskFold(models.Model):
    """What the rollups know of one task: its classification, creation, state steps and SLA outcomes.

    ``steps`` is ``[[sequence, epoch_ms, new_state], …]`` ordered by sequence (``TaskCreated`` and each
    ``TaskStateChanged``): a handful per task, kept so a late or replayed step slots in between its
    neighbours. ``facts_sequence`` is the sequence of the task event whose facts (area, type) are kept:
    the highest seen, so the latest classification wins in any delivery order. ``sla`` keeps, per SLA
    record, its outcome event with the highest sequence (``SLAMet``, ``SLABreached``, ``SLARecalculated``);
    ``breached`` is a breach from an older payload that named no record.
    """

    task_id = models.UUIDField(primary_key=True)
    agency_id = models.UUIDField(null=True)
    service_area = models.CharField(max_length=64, blank=True)
    task_type = models.CharField(max_length=64, blank=True)
    facts_sequence = models.IntegerField(default=0)
    created_ms = models.BigIntegerField(null=True)
    steps = models.JSONField(default=list)
    breached = models.BooleanField(default=False)
    # Each SLA record's latest outcome: {record id: [sequence, breached]} (``reports.fold``).
    sla = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"fold of task {self.task_id}"


class Rollup(models.Model):
    """One figure of one UTC hour for one (agency, service area, task type): ``value`` of ``metric``
    (for per-state and per-band metrics, of ``state``). Values are sums of per-task contributions;
    ``backlog`` rows are deltas (a running sum gives the open tasks per age band at an hour)."""

    bucket = models.DateTimeField(help_text="Start of the UTC hour (UTC days for the *_day metrics).")
    agency_id = models.UUIDField(null=True)
    service_area = models.CharField(max_length=64, blank=True)
    task_type = models.CharField(max_length=64, blank=True)
    metric = models.CharField(max_length=16)
    state = models.CharField(max_length=16, blank=True)
    value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "trend"
        verbose_name_plural = "trends"  # the admin entry is the trend page (reports.admin)
        constraints = [
            # Also the reports' index: metric first, then the hour range; value included (index-only scans).
            models.UniqueConstraint(
                fields=["metric", "bucket", "agency_id", "service_area", "task_type", "state"],
                include=["value"],
                nulls_distinct=False,
                name="reports_rollup_key",
            ),
        ]
        indexes = [
            models.Index(
                fields=["agency_id", "metric", "bucket"],
                include=["service_area", "task_type", "state", "value"],
                name="reports_rollup_agency_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric}/{self.state} {self.bucket:%Y-%m-%d %H}h = {self.value}"
