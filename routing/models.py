"""Routing: the rules that pick a worker for a task, each worker's profile, and the load counters.

A rule belongs to an agency and matches tasks by type, service area and priority (empty lists: any);
its strategy ranks the eligible workers. A worker's profile holds their skills, capacity and absence; the
``WorkerLoad`` row beside it is the open-task counter routing reads instead of counting tasks, kept in the
same transaction as every assignment and state change (``routing.load``).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


class RoutingStrategy(models.TextChoices):
    ROUND_ROBIN = "round_robin", "Round robin"
    LEAST_LOADED = "least_loaded", "Least loaded"


MAX_MATCH_VALUES = 50
MAX_CANDIDATES = 500
MAX_SKILLS = 50


def _slugs() -> ArrayField:
    return ArrayField(models.SlugField(max_length=64), default=list, blank=True, size=MAX_MATCH_VALUES)


class RoutingRule(models.Model):
    """How an agency routes the tasks it matches: the first enabled rule in ``order`` that matches wins."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agency = models.ForeignKey("accounts.Agency", on_delete=models.CASCADE, related_name="routing_rules")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=100, help_text="Lower runs first.")
    match_task_types = _slugs()
    match_service_areas = _slugs()
    match_priorities = ArrayField(models.CharField(max_length=16), default=list, blank=True, size=4)
    strategy = models.CharField(
        max_length=16, choices=RoutingStrategy.choices, default=RoutingStrategy.LEAST_LOADED
    )
    # Empty: the agency's agents. Otherwise only these (staff of the rule's agency).
    candidates = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    use_skills = models.BooleanField(
        default=True, help_text="Skip workers whose profile names other service areas or task types."
    )
    client_affinity = models.BooleanField(
        default=True, help_text="Keep a client with the worker of their open tasks when eligible."
    )
    capacity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Open tasks per worker, for workers whose profile sets none."
    )
    # Round robin's position: the last worker this rule gave a task to (state, not configuration).
    last_assignee_id = models.BigIntegerField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("agency", "order", "created_at", "id")
        indexes = [models.Index(fields=["agency", "enabled", "order"], name="routing_rule_agency_idx")]

    def __str__(self) -> str:
        return self.name

    def matches(self, *, task_type: str, service_area: str, priority: str) -> bool:
        """Pure: does this rule take a task with these facts (an empty list matches anything)?"""
        return (
            (not self.match_task_types or task_type in self.match_task_types)
            and (not self.match_service_areas or service_area in self.match_service_areas)
            and (not self.match_priorities or priority in self.match_priorities)
        )


class WorkerProfile(models.Model):
    """What routing knows of a worker: skills (empty: any), capacity (``None``: the rule's), absence."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="worker_profile"
    )
    service_areas = _slugs()
    task_types = _slugs()
    capacity = models.PositiveIntegerField(null=True, blank=True)
    away = models.BooleanField(default=False)
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user_id}"


class WorkerLoad(models.Model):
    """A worker's open tasks (not completed or cancelled) and their priority-weighted sum.

    Changed only by ``routing.load`` inside the transactions that assign tasks or change their state, so it
    equals a recount at every commit; ``routing_load_repair`` recounts anyway (rows written around the
    services, e.g. by a bulk import)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="worker_load"
    )
    agency = models.ForeignKey("accounts.Agency", null=True, on_delete=models.CASCADE, related_name="+")
    open_tasks = models.IntegerField(default=0)
    weighted_load = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["agency"], name="routing_load_agency_idx")]

    def __str__(self) -> str:
        return f"load of {self.user_id}: {self.open_tasks}"


class RoutingLock(models.Model):
    """One row per agency, locked (``FOR UPDATE``) by every routing decision of that agency: decisions of one
    agency run one at a time, so two concurrent creations can never both take a worker's last slot."""

    agency = models.OneToOneField(
        "accounts.Agency", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )

    def __str__(self) -> str:
        return f"routing lock of {self.agency_id}"


class TaskRouting(models.Model):
    """The latest routing decision that assigned a task: lets a later manual reassignment be recorded as an
    override of it. One row per routed task (ids only, nothing personal)."""

    task = models.OneToOneField(
        "workflow.Task", primary_key=True, on_delete=models.CASCADE, related_name="routing"
    )
    rule = models.ForeignKey(RoutingRule, null=True, on_delete=models.SET_NULL, related_name="+")
    strategy = models.CharField(max_length=16, choices=RoutingStrategy.choices)
    assignee_id_routed = models.BigIntegerField()
    routed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"routing of {self.task_id}"
