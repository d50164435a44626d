"""The plain DRF peer's models (bench/http_peer_bench.py): a task of workflow.Task's shape with a
django-fsm state machine, an audit row per transition, and users that belong to an agency."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django_fsm import FSMField, transition


class Agency(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.name


class PeerUser(AbstractUser):
    role = models.CharField(max_length=16, default="agency")
    agency = models.ForeignKey(Agency, null=True, blank=True, on_delete=models.PROTECT, related_name="+")


def is_staff_for(instance: "Task", user) -> bool:
    return user.role == "admin" or (user.role == "agency" and user.agency_id == instance.agency_id)


def has_assignee(instance: "Task") -> bool:
    return instance.assignee_id is not None


def has_blocked_reason(instance: "Task") -> bool:
    return bool(instance.blocked_reason.strip())


class Task(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    task_type = models.SlugField(max_length=64)
    service_area = models.SlugField(max_length=64, blank=True)
    priority = models.CharField(max_length=16, default="normal")
    client = models.ForeignKey(PeerUser, on_delete=models.PROTECT, related_name="+")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="+", db_index=False)
    assignee = models.ForeignKey(PeerUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    blocked_reason = models.TextField(blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    state = FSMField(default="new")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The peer gets the index its list needs too: the comparison is of stacks, not of schemas.
        indexes = [models.Index(fields=["agency", "-created_at", "id"], name="peer_agency_created_idx")]

    def __str__(self) -> str:
        return self.title

    @transition(
        field=state, source="new", target="in_progress", conditions=[has_assignee], permission=is_staff_for
    )
    def start(self) -> None:
        pass

    @transition(field=state, source="in_progress", target="completed", permission=is_staff_for)
    def complete(self) -> None:
        pass

    @transition(
        field=state,
        source="in_progress",
        target="blocked",
        conditions=[has_blocked_reason],
        permission=is_staff_for,
    )
    def block(self) -> None:
        pass

    @transition(field=state, source="blocked", target="in_progress", permission=is_staff_for)
    def unblock(self) -> None:
        pass

    @transition(
        field=state, source=["new", "in_progress", "blocked"], target="cancelled", permission=is_staff_for
    )
    def cancel(self) -> None:
        pass


class AuditEntry(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="audit")
    actor = models.ForeignKey(PeerUser, null=True, on_delete=models.SET_NULL, related_name="+")
    from_state = models.CharField(max_length=32)
    to_state = models.CharField(max_length=32)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.from_state} -> {self.to_state}"
