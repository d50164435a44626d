"""Task writes: creation, transitions and edits. Each runs in one transaction and writes exactly one event.

Edits (``task_update``, ``task_assign``) claim the next position of the task's stream with the same
compare-and-swap as transitions (``outbox.append.aggregate_advance``), writing the edited columns in that
one UPDATE.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db import transaction

from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.access import is_admin, is_agent, is_client, is_staff_for, may_serve
from polaris.accounts.models import Agency, User
from polaris.errors import ConcurrentModification, PermissionDenied, ValidationFailed
from workflow.errors import PreconditionFailed, TaskClosed
from workflow.models import ActionPlan, ActionPlanState, Task, TaskPriority, TaskState
from workflow.selectors import task_get
from workflow.signals import task_created
from workflow.validation import client_errors, is_slug, title_errors

from .checklists import checklist_override_apply
from .edits import task_edit_apply
from .events import event_record_creation
from .transitions import transition_apply

CLIENT_TASK_TYPES = frozenset({"intake"})


def _check_task_input(
    *,
    actor: User | None,
    title: str,
    task_type: str,
    service_area: str,
    priority: str,
    client: User,
    agency: Agency,
    assignee: User | None,
    action_plan: ActionPlan | None,
    priority_given: bool,
) -> None:
    errors: dict[str, list[str]] = {}
    if title_problems := title_errors(title):
        errors["title"] = title_problems
    if not is_slug(task_type):
        errors["task_type"] = ["Use a lowercase slug such as 'intake' or 'home-visit'."]
    if service_area and not is_slug(service_area):
        errors["service_area"] = ["Use a lowercase slug such as 'housing'."]
    if priority not in TaskPriority.values:
        errors["priority"] = [f"Choose one of: {', '.join(TaskPriority.values)}."]
    if client_problems := client_errors(client, agency_id=agency.pk):
        errors["client"] = client_problems
    if assignee is not None and not may_serve(assignee, agency_id=agency.pk):
        errors["assignee"] = ["Must be an agent of the task's agency."]
    if action_plan is not None:
        if action_plan.client_id != client.pk or action_plan.agency_id != agency.pk:
            errors["action_plan"] = ["The plan belongs to another client or agency."]
        elif action_plan.state == ActionPlanState.ARCHIVED:
            errors["action_plan"] = ["The plan is archived."]
    if errors:
        raise ValidationFailed(details=errors)

    if actor is None or is_admin(actor):
        return
    if is_agent(actor):
        if actor.agency_id != agency.pk:
            raise PermissionDenied("Agency agents create tasks for their own agency only.")
        return
    if client.pk != actor.pk or task_type not in CLIENT_TASK_TYPES:
        raise PermissionDenied("Clients may create intake tasks for themselves only.")
    if priority_given or assignee is not None:
        raise PermissionDenied("Clients may not choose a task's priority or assignee.")


@transaction.atomic
def task_create(
    *,
    actor: User | None,
    title: str,
    task_type: str,
    client: User,
    agency: Agency,
    service_area: str = "",
    priority: str | None = None,
    assignee: User | None = None,
    action_plan: ActionPlan | None = None,
    description: str = "",
    due_at: datetime | None = None,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> Task:
    """Create a task in state ``new`` and write its ``TaskCreated`` event.

    ``priority`` defaults to ``normal``; a client may name neither a priority nor an assignee.
    """
    priority_given = priority is not None
    priority = priority or TaskPriority.NORMAL
    if action_plan is not None:
        # The plan's row locked until commit: an archive waits for this task, or is seen archived here.
        action_plan = ActionPlan.objects.select_for_update().get(pk=action_plan.pk)
    _check_task_input(
        actor=actor,
        title=title,
        task_type=task_type,
        service_area=service_area,
        priority=priority,
        client=client,
        agency=agency,
        assignee=assignee,
        action_plan=action_plan,
        priority_given=priority_given,
    )
    task = Task.objects.create(
        title=title.strip(),
        description=description,
        task_type=task_type,
        service_area=service_area,
        priority=priority,
        client=client,
        agency=agency,
        assignee=assignee,
        action_plan=action_plan,
        due_at=due_at,
        created_by=actor,
    )
    context = EventContext.build(actor=actor, correlation_id=correlation_id, caused_by=caused_by)
    event = event_record_creation(instance=task, context=context)
    task_created.send(sender=Task, task=task, event=event, context=context)
    return task


@transaction.atomic
def task_transition(
    *,
    task_id: Any,
    target_state: str,
    actor: User | None,
    reason: str = "",
    internal: bool = False,
    override_checklist: bool = False,
    expected_version: int | frozenset[int] | None = None,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> tuple[Task, OutboxEvent]:
    """Move a task to ``target_state`` through its django-fsm transition.

    ``internal`` marks ``reason`` as for staff only: stored on the event (``reason_internal``) and, for a
    block, on the task (``blocked_reason_internal``); a client's view leaves it out. Only admins and
    agency staff may mark a reason internal (``PermissionDenied``). ``override_checklist`` completes a
    task whose required checklist items are open: a supervisor of its agency or an admin, with a reason
    (``workflow.services.checklists.checklist_override_apply``); the event lists ``overridden_guards``.

    Raises ``NotFound`` (absent or out of the actor's scope), ``InvalidTransition`` (no such edge),
    ``PermissionDenied``, ``GuardFailed`` (names the refusing guards) or ``ConcurrentModification``
    (another writer advanced the task first). With ``expected_version`` (HTTP ``If-Match``), a task at
    another version, or one that another writer advances meanwhile, is ``PreconditionFailed`` instead.
    On any error nothing is written.
    """
    task = task_get(user=actor, task_id=task_id)
    precondition_check(task, expected_version)
    if internal and is_client(actor):
        raise PermissionDenied("Only staff may mark a reason internal.")
    reason = (reason or "").strip()
    if override_checklist:
        checklist_override_apply(task=task, actor=actor, target_state=target_state, reason=reason)
    if target_state == TaskState.BLOCKED:
        task.blocked_reason = reason  # the has_blocked_reason guard reads it; nothing is saved on refusal
        task.blocked_reason_internal = internal
    context = EventContext.build(
        actor=actor,
        correlation_id=correlation_id,
        caused_by=caused_by,
        reason=reason,
        reason_internal=internal,
    )
    with stale_as_precondition(expected_version):
        event = transition_apply(instance=task, target_state=target_state, context=context)
    return task, event


def precondition_check(instance: Task | ActionPlan, expected_version: int | frozenset[int] | None) -> None:
    """``If-Match``: refuse to act on anything but the version the caller read (any of several)."""
    if expected_version is None:
        return
    accepted = expected_version if isinstance(expected_version, frozenset) else {expected_version}
    if instance.version not in accepted:
        raise PreconditionFailed(expected=expected_version, current=instance.version)


@contextlib.contextmanager
def stale_as_precondition(expected_version: int | frozenset[int] | None) -> Iterator[None]:
    """A lost compare-and-swap is ``PreconditionFailed`` for a caller that sent ``If-Match``."""
    try:
        yield
    except ConcurrentModification as exc:
        if expected_version is None:
            raise
        raise PreconditionFailed(expected=expected_version) from exc


# Who may edit which field: admins and the task's agency any of these; a client only these, only while
# the task is new. service_area and task_type change only while the task is new (the SLA re-matches).
EDITABLE_FIELDS = (
    "title",
    "description",
    "priority",
    "due_at",
    "assignee",
    "action_plan",
    "service_area",
    "task_type",
    "staff_notes",
)
CLIENT_EDITABLE_FIELDS = frozenset({"title", "description"})
NEW_ONLY_FIELDS = frozenset({"service_area", "task_type"})
CLOSED_STATES = frozenset({TaskState.COMPLETED, TaskState.CANCELLED})


def task_edit_check_permission(*, task: Task, actor: User | None, fields: set[str]) -> None:
    """``PermissionDenied`` unless ``actor`` may change every one of ``fields`` of ``task`` now."""
    if is_staff_for(task, actor):
        return
    if is_client(actor) and actor is not None and task.client_id == actor.pk:
        refused = sorted(fields - CLIENT_EDITABLE_FIELDS)
        if refused:
            raise PermissionDenied(
                "Clients may change only the title and description of their tasks.",
                details={"fields": refused},
            )
        if task.state != TaskState.NEW:
            raise PermissionDenied("Clients may edit their task only while it is new.")
        return
    raise PermissionDenied("You may not edit this task.")


def _check_edit_values(task: Task, changes: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    if "title" in changes and (problems := title_errors(changes["title"] or "")):
        errors["title"] = problems
    if "task_type" in changes and not is_slug(changes["task_type"] or ""):
        errors["task_type"] = ["Use a lowercase slug such as 'intake' or 'home-visit'."]
    if changes.get("service_area") and not is_slug(changes["service_area"]):
        errors["service_area"] = ["Use a lowercase slug such as 'housing'."]
    if "priority" in changes and changes["priority"] not in TaskPriority.values:
        errors["priority"] = [f"Choose one of: {', '.join(TaskPriority.values)}."]
    assignee = changes.get("assignee")
    if assignee is not None and not may_serve(assignee, agency_id=task.agency_id):
        errors["assignee"] = ["Must be an agent of the task's agency."]
    plan = changes.get("action_plan")
    if plan is not None and (plan.client_id != task.client_id or plan.agency_id != task.agency_id):
        errors["action_plan"] = ["The plan belongs to another client or agency."]
    for field in sorted(NEW_ONLY_FIELDS & set(changes)):
        if task.state != TaskState.NEW and changes[field] != getattr(task, field):
            errors[field] = ["Can change only while the task is new."]
    if errors:
        raise ValidationFailed(details=errors)


@transaction.atomic
def task_update(
    *,
    task_id: Any,
    actor: User | None,
    changes: dict[str, Any],
    expected_version: int | frozenset[int] | None = None,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> tuple[Task, OutboxEvent | None]:
    """Change some of ``EDITABLE_FIELDS`` of a task and write exactly one event.

    The event is ``TaskAssigned`` when the assignee changes (alone or with other fields), else
    ``TaskUpdated``; both carry ``changes: {field: {"old", "new"}}`` for every field that changed, except
    ``staff_notes``, named without its text (``{"staff_notes": {}}``: staff read the task itself). A
    request that changes nothing writes nothing and returns ``(task, None)``.

    Raises ``NotFound`` (out of scope), ``TaskClosed`` (completed/cancelled), ``PermissionDenied`` (the
    field-permission rules above), ``ValidationFailed``, ``ActionPlanClosed`` (joining or leaving an
    archived plan), ``PreconditionFailed`` (``expected_version`` stale) or ``ConcurrentModification``.
    """
    task = task_get(user=actor, task_id=task_id)
    precondition_check(task, expected_version)
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationFailed(details={field: ["This field cannot be edited."] for field in unknown})
    if task.state in CLOSED_STATES:
        raise TaskClosed(details={"state": task.state})
    task_edit_check_permission(task=task, actor=actor, fields=set(changes))
    if "title" in changes and isinstance(changes["title"], str):
        changes = {**changes, "title": changes["title"].strip()}
    _check_edit_values(task, changes)
    context = EventContext.build(actor=actor, correlation_id=correlation_id, caused_by=caused_by)
    with stale_as_precondition(expected_version):
        event = task_edit_apply(task=task, changes=changes, context=context)
    return task, event


def task_assign(
    *,
    task_id: Any,
    actor: User | None,
    assignee: User | None,
    expected_version: int | frozenset[int] | None = None,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> tuple[Task, OutboxEvent | None]:
    """Assign (or, with ``None``, unassign) a task: the same change and ``TaskAssigned`` event as
    ``task_update(changes={"assignee": …})``."""
    return task_update(
        task_id=task_id,
        actor=actor,
        changes={"assignee": assignee},
        expected_version=expected_version,
        correlation_id=correlation_id,
        caused_by=caused_by,
    )
