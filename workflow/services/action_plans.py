"""Action plan writes: creation, edits, activation and archiving, each with exactly one event."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.access import is_staff_for
from polaris.accounts.models import Agency, User
from polaris.errors import PermissionDenied, ValidationFailed
from workflow.errors import ActionPlanClosed
from workflow.models import ActionPlan, ActionPlanState
from workflow.selectors import action_plan_get
from workflow.validation import client_errors, title_errors

from .approvals import approval_policy_audit, approval_policy_changes
from .edits import action_plan_edit_apply
from .events import event_record_creation
from .tasks import precondition_check, stale_as_precondition
from .transitions import transition_apply

PLAN_EDITABLE_FIELDS = ("title", "description", "approval_policy")


def action_plan_lock(plan: ActionPlan) -> ActionPlan:
    """``plan`` re-read with its row locked until the transaction ends (call inside ``atomic()``): the
    archive guard and a task's joining the plan take this lock, so neither decides on a stale plan."""
    return ActionPlan.objects.select_for_update().get(pk=plan.pk)


@transaction.atomic
def action_plan_create(
    *,
    actor: User | None,
    title: str,
    client: User,
    agency: Agency,
    description: str = "",
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> ActionPlan:
    """Create a plan in state ``draft`` and write its ``ActionPlanCreated`` event."""
    return action_plan_insert(
        actor=actor,
        title=title,
        client=client,
        agency=agency,
        description=description,
        correlation_id=correlation_id,
        caused_by=caused_by,
    )


def action_plan_insert(
    *,
    actor: User | None,
    title: str,
    client: User,
    agency: Agency,
    description: str = "",
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> ActionPlan:
    """``action_plan_create``'s work in the caller's transaction, without a savepoint of its own (two round
    trips saved): for an atomic service that makes the plan as one step of its own write and rolls back
    whole on any failure (``careplans``' instantiation)."""
    errors: dict[str, list[str]] = {}
    if title_problems := title_errors(title):
        errors["title"] = title_problems
    if client_problems := client_errors(client, agency_id=agency.pk):
        errors["client"] = client_problems
    if errors:
        raise ValidationFailed(details=errors)
    plan = ActionPlan(title=title.strip(), description=description, client=client, agency=agency)
    if not is_staff_for(plan, actor):
        raise PermissionDenied("Only admins and the plan's agency may create action plans.")
    plan.created_by = actor
    plan.save()
    event_record_creation(
        instance=plan,
        context=EventContext.build(actor=actor, correlation_id=correlation_id, caused_by=caused_by),
    )
    return plan


@transaction.atomic
def action_plan_transition(
    *,
    action_plan_id: Any,
    target_state: str,
    actor: User | None,
    reason: str = "",
    expected_version: int | frozenset[int] | None = None,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> tuple[ActionPlan, OutboxEvent]:
    """Move a plan to ``target_state``; same errors and guarantees as ``task_transition``.

    The plan's row is locked first (``action_plan_lock``): a task joining the plan meanwhile waits, or
    has joined before the guards read the plan's tasks, so ``all_tasks_closed`` sees the truth.
    """
    plan = action_plan_lock(action_plan_get(user=actor, action_plan_id=action_plan_id))
    precondition_check(plan, expected_version)
    context = EventContext.build(
        actor=actor, correlation_id=correlation_id, caused_by=caused_by, reason=reason
    )
    with stale_as_precondition(expected_version):
        event = transition_apply(instance=plan, target_state=target_state, context=context)
    return plan, event


@transaction.atomic
def action_plan_update(
    *,
    action_plan_id: Any,
    actor: User | None,
    changes: dict[str, Any],
    expected_version: int | frozenset[int] | None = None,
    correlation_id: str | None = None,
    caused_by: OutboxEvent | None = None,
) -> tuple[ActionPlan, OutboxEvent | None]:
    """Change a plan's ``title``/``description``/``approval_policy`` with one ``ActionPlanUpdated`` event
    (none if unchanged). A policy is validated and permitted by ``workflow.services.approvals``, starts a
    new approval round and is audited.

    Staff of the plan's agency and admins only (``PermissionDenied``); an archived plan is
    ``ActionPlanClosed``; ``expected_version`` as for tasks.
    """
    plan = action_plan_get(user=actor, action_plan_id=action_plan_id)
    precondition_check(plan, expected_version)
    unknown = sorted(set(changes) - set(PLAN_EDITABLE_FIELDS))
    if unknown:
        raise ValidationFailed(details={field: ["This field cannot be edited."] for field in unknown})
    if plan.state == ActionPlanState.ARCHIVED:
        raise ActionPlanClosed()
    if not is_staff_for(plan, actor):
        raise PermissionDenied("Only admins and the plan's agency may edit action plans.")
    if "title" in changes:
        if problems := title_errors(changes["title"] or ""):
            raise ValidationFailed(details={"title": problems})
        changes = {**changes, "title": changes["title"].strip()}
    policy_before = plan.approval_policy
    if "approval_policy" in changes:
        changes = approval_policy_changes(plan=plan, actor=actor, changes=changes)
    context = EventContext.build(actor=actor, correlation_id=correlation_id, caused_by=caused_by)
    with stale_as_precondition(expected_version):
        event = action_plan_edit_apply(plan=plan, changes=changes, context=context)
    approval_policy_audit(plan=plan, actor=actor, before=policy_before)
    return plan, event


def action_plan_activate(
    *, action_plan_id: Any, actor: User | None, **kwargs: Any
) -> tuple[ActionPlan, OutboxEvent]:
    """``draft → active``; needs at least one task (guard ``has_tasks``) and, under an approval policy,
    its approvals (guard ``approved``: ``workflow.services.approvals``)."""
    return action_plan_transition(
        action_plan_id=action_plan_id, target_state=ActionPlanState.ACTIVE, actor=actor, **kwargs
    )


def action_plan_archive(
    *, action_plan_id: Any, actor: User | None, **kwargs: Any
) -> tuple[ActionPlan, OutboxEvent]:
    """``draft|active → archived``; an active plan needs all its tasks closed (guard ``all_tasks_closed``)."""
    return action_plan_transition(
        action_plan_id=action_plan_id, target_state=ActionPlanState.ARCHIVED, actor=actor, **kwargs
    )
