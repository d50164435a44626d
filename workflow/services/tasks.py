"""Task writes: creation and transitions. Each runs in one transaction and writes exactly one event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.access import is_admin, is_agent, is_client, may_serve
from polaris.accounts.models import Agency, User
from polaris.errors import PermissionDenied, ValidationFailed
from workflow.models import ActionPlan, ActionPlanState, Task, TaskPriority, TaskState
from workflow.selectors import task_get
from workflow.validation import is_slug, title_errors

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
    if not is_client(client):
        errors["client"] = ["Must be a client user."]
    elif client.agency_id is not None and client.agency_id != agency.pk:
        errors["client"] = ["This client is served by another agency."]
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


@transaction.atomic
def task_create(
    *,
    actor: User | None,
    title: str,
    task_type: str,
    client: User,
    agency: Agency,
    service_area: str = "",
    priority: str = TaskPriority.NORMAL,
    assignee: User | None = None,
    action_plan: ActionPlan | None = None,
    description: str = "",
    due_at: datetime | None = None,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> Task:
    """Create a task in state ``new`` and write its ``TaskCreated`` event."""
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
    event_record_creation(instance=task, context=context)
    return task


@transaction.atomic
def task_transition(
    *,
    task_id: Any,
    target_state: str,
    actor: User | None,
    reason: str = "",
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> tuple[Task, OutboxEvent]:
    """Move a task to ``target_state`` through its django-fsm transition.

    Raises ``NotFound`` (absent or out of the actor's scope), ``InvalidTransition`` (no such edge),
    ``PermissionDenied``, ``GuardFailed`` (names the refusing guards) or ``ConcurrentModification``
    (another writer advanced the task first). On any error nothing is written.
    """
    task = task_get(user=actor, task_id=task_id)
    reason = (reason or "").strip()
    if target_state == TaskState.BLOCKED:
        task.blocked_reason = reason  # the has_blocked_reason guard reads it; nothing is saved on refusal
    context = EventContext.build(
        actor=actor, correlation_id=correlation_id, caused_by=caused_by, reason=reason
    )
    event = transition_apply(instance=task, target_state=target_state, context=context)
    return task, event
