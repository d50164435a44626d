"""Plan templates and what a plan made from one keeps: versions, the task graph, migrations between versions.

A template belongs to an agency; its versions are numbered and immutable once a plan uses one (a plan
points at the version it was made from: ``TemplatedPlan``). A plan's tasks remember the blueprint they came
from (``TemplatedTask``) and whom they wait for (``TaskDependency``, the whole graph; the open part of it is
denormalised on ``Task.waiting_on`` so the start guard and the task's representation read no other table).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PlanTemplate(models.Model):
    """A kind of plan an agency runs: a name and a numbered series of versions (the latest is used)."""

    agency = models.ForeignKey("accounts.Agency", on_delete=models.PROTECT, related_name="plan_templates")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    latest_version = models.PositiveIntegerField(default=1)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        indexes = [models.Index(fields=["agency", "name"], name="plantemplate_agency_name_idx")]

    def __str__(self) -> str:
        return self.name


class PlanTemplateVersion(models.Model):
    """One version's task blueprints (validated JSON: ``careplans.blueprints``) and approval policy."""

    template = models.ForeignKey(PlanTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    blueprints = models.JSONField(default=list)
    # {"count": N, "approvers": [user ids]} or {"count": N, "role": "supervisor"}; stored for the plan's
    # approval guard (built elsewhere), null when none is needed.
    requires_approval = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("template_id", "number")
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="plantemplateversion_number_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.number}"


class TemplatedPlan(models.Model):
    """Which template version a plan runs (moved by a migration; its insert keys-shares the version row,
    which is how an edit of the version learns, under its lock, that the version is in use)."""

    plan = models.OneToOneField(
        "workflow.ActionPlan", primary_key=True, on_delete=models.CASCADE, related_name="template_link"
    )
    version = models.ForeignKey(PlanTemplateVersion, on_delete=models.PROTECT, related_name="plans")

    class Meta:
        indexes = [models.Index(fields=["version"], name="templatedplan_version_idx")]

    def __str__(self) -> str:
        return f"{self.plan_id} → {self.version_id}"


class TemplatedTask(models.Model):
    """The blueprint a plan's task was made from, and when it became ready (its due date counts from it)."""

    task = models.OneToOneField(
        "workflow.Task", primary_key=True, on_delete=models.CASCADE, related_name="blueprint_link"
    )
    # Served by the unique (plan, key) index.
    plan = models.ForeignKey(
        "workflow.ActionPlan", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=64)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "key"], name="templatedtask_plan_key_uniq")]

    def __str__(self) -> str:
        return self.key


class TaskDependency(models.Model):
    """``task`` waits for ``predecessor`` (both of one plan). Indexed both ways: a task's predecessors (the
    unique pair's index) and a predecessor's dependents (the readiness handler's lookup)."""

    # No single-column indexes: the unique pair serves a task's lookups, the index below a predecessor's.
    task = models.ForeignKey("workflow.Task", on_delete=models.CASCADE, related_name="+", db_index=False)
    predecessor = models.ForeignKey(
        "workflow.Task", on_delete=models.CASCADE, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "predecessor"], name="taskdependency_pair_uniq")
        ]
        indexes = [models.Index(fields=["predecessor"], name="taskdependency_predecessor_idx")]

    def __str__(self) -> str:
        return f"{self.task_id} waits for {self.predecessor_id}"


class PlanMigrationState(models.TextChoices):
    RUNNING = "running"
    DONE = "done"


class PlanMigration(models.Model):
    """One application of a move from ``from_version`` to ``to_version``: its filter, its state and what it
    did. Plans move one by one (each in its own transaction, batch by batch); a plan already moved is no
    longer on ``from_version``, so a repeated or resumed application changes nothing twice."""

    template = models.ForeignKey(PlanTemplate, on_delete=models.CASCADE, related_name="migrations")
    from_version = models.PositiveIntegerField()
    to_version = models.PositiveIntegerField()
    plan_filter = models.JSONField(default=dict)
    state = models.CharField(
        max_length=16, choices=PlanMigrationState.choices, default=PlanMigrationState.RUNNING
    )
    plans_migrated = models.PositiveIntegerField(default=0)
    tasks_added = models.PositiveIntegerField(default=0)
    tasks_cancelled = models.PositiveIntegerField(default=0)
    tasks_redated = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.template_id}: v{self.from_version} → v{self.to_version}"
