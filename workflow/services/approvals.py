"""Approvals of action plans: the policy (who must approve, how many), votes, and the ``approved`` guard's
inputs.

A plan with an ``approval_policy`` — ``{"count": N, "approvers": [user ids]}`` or ``{"count": N, "role":
"supervisor" | "agency" | "admin"}`` — cannot be activated until ``N`` eligible approvers have approved it
in its current round (guard ``approved``). The rules, decided here:

- Eligible: a listed user (an admin, or staff of the plan's agency), or, by role, a supervisor of the
  plan's agency (``"supervisor"``), any of its staff (``"agency"``: agents and supervisors), or an admin
  (``"admin"``). The plan's
  creator never approves their own plan (four eyes): refused, and not counted.
- One vote per approver per round; a second is ``409 APPROVAL_ALREADY_RECORDED`` (a vote is a decision
  on the record, not a draft to edit).
- A rejection needs a comment; it keeps the plan in draft and starts a new round: the approvals so far no
  longer count, and everyone may vote again. The comment is shown on the plan as ``last_rejection``.
- Setting a policy where there is none is any staff's to do; changing or removing one is an admin's or a
  supervisor's of the plan's agency (so the people a policy gates cannot lift it). Only a draft's policy
  can change (409 otherwise); a change starts a new round and is audited.

Every vote is an ``ActionPlanApprovalRecorded`` event on the plan's stream, written under the plan's row
lock, so concurrent votes are counted one after the other and an activation waits for them. Comments are
free text: the event carries their length and digest, the row their words (scrubbed on erasure).
"""

from __future__ import annotations

from typing import Any, TypeGuard

from django.db import transaction

from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.access import is_admin, is_agent, is_client, is_supervisor, require_manager
from polaris.accounts.models import User
from polaris.audit.services import audit_record
from polaris.erasure import eraser_register, rows_erase, text_digest
from polaris.errors import Conflict, PermissionDenied, ValidationFailed
from workflow.errors import ApprovalAlreadyRecorded, ApprovalNotOpen
from workflow.events import EventType
from workflow.models import ActionPlan, ActionPlanApproval, ActionPlanState, ApprovalDecision
from workflow.selectors import action_plan_get

from .events import event_record_edit

# One validator for plans' ``approval_policy`` and plan templates' ``requires_approval`` (careplans), so a
# policy a template stores is one a plan takes.
APPROVAL_MAX_COUNT = 20
APPROVERS_MAX = 50
APPROVAL_COMMENT_MAX_LENGTH = 2000
APPROVER_ROLES = ("supervisor", "agency", "admin")
MAX_BIGINT = 2**63 - 1


def _invalid(message: str, field: str) -> ValidationFailed:
    return ValidationFailed(details={field: [message]})


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def approval_policy_validate(
    value: Any, agency: Any, *, field: str = "approval_policy"
) -> dict[str, Any] | None:
    """``value`` as a stored policy (``None``: no approval needed), or ``ValidationFailed`` (details under
    ``field``: the request's name for the policy). ``agency`` (an ``Agency`` or its id) is the plan's:
    listed approvers must be admins or staff of it. Plan templates call this too (their
    ``requires_approval``), so a policy a template stores is one its plans take."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid(
            'Must be {"count": N, "approvers": [user ids]} or {"count": N, "role": "supervisor"}.', field
        )
    if unknown := sorted(str(key) for key in set(value) - {"count", "approvers", "role"}):
        raise _invalid(f"Unknown field(s): {', '.join(unknown)}.", field)
    count = value.get("count")
    if not _is_int(count) or not 1 <= count <= APPROVAL_MAX_COUNT:
        raise _invalid(f"count must be an integer from 1 to {APPROVAL_MAX_COUNT}.", field)
    if ("approvers" in value) == ("role" in value):
        raise _invalid("Name either approvers (user ids) or a role, not both.", field)
    if "role" in value:
        if value["role"] not in APPROVER_ROLES:
            raise _invalid(f"role must be one of: {', '.join(APPROVER_ROLES)}.", field)
        return {"count": count, "role": value["role"]}
    approvers = value["approvers"]
    if not isinstance(approvers, list) or not 1 <= len(approvers) <= APPROVERS_MAX:
        raise _invalid(f"approvers must be a list of 1 to {APPROVERS_MAX} user ids.", field)
    if not all(_is_int(pk) and 0 < pk <= MAX_BIGINT for pk in approvers) or len(set(approvers)) != len(
        approvers
    ):
        raise _invalid("approvers must be distinct user ids.", field)
    if count > len(approvers):
        raise _invalid("count cannot exceed the number of approvers.", field)
    agency_id = getattr(agency, "pk", agency)
    users = User.objects.filter(pk__in=approvers, is_active=True)
    eligible = {
        user.pk
        for user in users
        if is_admin(user) or (is_agent(user) and str(user.agency_id) == str(agency_id))
    }
    if missing := [pk for pk in approvers if pk not in eligible]:
        raise _invalid(
            f"Approver {', '.join(map(str, missing))} does not exist among the admins and the staff of the "
            "plan's agency.",
            field,
        )
    return {"count": count, "approvers": list(approvers)}


def approver_eligible(plan: ActionPlan, user: User | None) -> bool:
    """May ``user`` vote on ``plan`` under its policy (the creator never may)."""
    policy = plan.approval_policy
    if not policy or user is None or not user.is_active or user.pk == plan.created_by_id:
        return False
    if "approvers" in policy:
        in_agency = is_admin(user) or (is_agent(user) and user.agency_id == plan.agency_id)
        return user.pk in policy["approvers"] and in_agency
    role = policy.get("role")
    if role == "admin":
        return is_admin(user)
    if not is_agent(user) or user.agency_id != plan.agency_id:
        return False
    return role == "agency" or is_supervisor(user)


def _approvals_in_round(plan: ActionPlan) -> list[ActionPlanApproval]:
    return [vote for vote in plan.approvals.all() if vote.round == plan.approval_round]


@transaction.atomic
def action_plan_approval_record(
    *,
    action_plan_id: Any,
    actor: User | None,
    decision: str,
    comment: str = "",
    correlation_id: str | None = None,
) -> tuple[ActionPlan, ActionPlanApproval, OutboxEvent]:
    """Record ``actor``'s vote (``approve`` or ``reject``) on a draft plan, with its event.

    ``NotFound`` out of scope; ``ApprovalNotOpen`` (409) unless the plan is a draft with a policy;
    ``PermissionDenied`` for anyone not eligible (clients, the creator, staff not named by the policy);
    ``ApprovalAlreadyRecorded`` (409) for a second vote in a round; ``ValidationFailed`` for a bad
    decision, a comment over 2,000 characters or a rejection without one.
    """
    scoped = action_plan_get(user=actor, action_plan_id=action_plan_id)
    if is_client(actor):
        raise PermissionDenied("Clients do not vote on their plans' approval.")
    plan = ActionPlan.objects.select_for_update().get(pk=scoped.pk)
    if decision not in ApprovalDecision.values:
        raise ValidationFailed(
            details={"decision": [f"Choose one of: {', '.join(ApprovalDecision.values)}."]}
        )
    comment = (comment or "").strip()
    if len(comment) > APPROVAL_COMMENT_MAX_LENGTH:
        raise ValidationFailed(details={"comment": [f"At most {APPROVAL_COMMENT_MAX_LENGTH} characters."]})
    if decision == ApprovalDecision.REJECT and not comment:
        raise ValidationFailed(details={"comment": ["A rejection needs a comment saying why."]})
    if plan.state != ActionPlanState.DRAFT or not plan.approval_policy:
        raise ApprovalNotOpen(details={"state": plan.state, "approval_policy": plan.approval_policy})
    if not approver_eligible(plan, actor):
        reason = (
            "the plan's creator" if actor is not None and actor.pk == plan.created_by_id else "not eligible"
        )
        raise PermissionDenied("You may not vote on this plan's approval.", details={"approver": reason})
    assert actor is not None
    if ActionPlanApproval.objects.filter(
        action_plan=plan, round=plan.approval_round, approver=actor
    ).exists():
        raise ApprovalAlreadyRecorded(details={"round": plan.approval_round})
    voted_round = plan.approval_round
    approval = ActionPlanApproval.objects.create(
        action_plan=plan, round=voted_round, approver=actor, decision=decision, comment=comment
    )
    approvals = sum(1 for vote in _approvals_in_round(plan) if vote.decision == ApprovalDecision.APPROVE)
    required = int(plan.approval_policy["count"])
    edited: tuple[str, ...] = ()
    if decision == ApprovalDecision.REJECT:
        plan.approval_round += 1  # approvals reset: the next round starts empty
        edited = ("approval_round",)
    event, _ = event_record_edit(
        instance=plan,
        event_type=EventType.ACTION_PLAN_APPROVAL_RECORDED,
        edited_fields=edited,
        context=EventContext.build(actor=actor, correlation_id=correlation_id),
        payload={
            "decision": decision,
            "approver_id": actor.pk,
            "round": voted_round,
            "comment": text_digest(comment),
            "approvals": 0 if edited else approvals,
            "required": required,
            "approved": not edited and approvals >= required,
        },
    )
    return plan, approval, event


def approval_policy_changes(
    *, plan: ActionPlan, actor: User | None, changes: dict[str, Any]
) -> dict[str, Any]:
    """``changes`` (a plan edit naming ``approval_policy``) with the policy validated and, when it really
    changes, a new approval round. Only a draft's policy changes; changing or removing an existing policy
    is for admins and the agency's supervisors (``PermissionDenied``)."""
    policy = approval_policy_validate(changes["approval_policy"], plan.agency_id)
    if policy == plan.approval_policy:
        return {**changes, "approval_policy": policy}
    if plan.state != ActionPlanState.DRAFT:
        raise Conflict("Only a draft plan's approval policy can change.", details={"state": plan.state})
    if plan.approval_policy is not None:
        require_manager(
            actor,
            agency_id=plan.agency_id,
            message="Only admins and the agency's supervisors may change or remove an approval policy.",
        )
    return {**changes, "approval_policy": policy, "approval_round": plan.approval_round + 1}


def approval_policy_audit(*, plan: ActionPlan, actor: User | None, before: Any) -> None:
    """Audit a policy change (inside the edit's transaction); nothing when it did not change."""
    if plan.approval_policy != before:
        audit_record(
            actor=actor,
            action="action_plan.approval_policy_changed",
            obj=plan,
            before={"approval_policy": before},
            after={"approval_policy": plan.approval_policy, "approval_round": plan.approval_round},
        )


def _comments_erase(*, client_id: int, dry_run: bool) -> int:
    rows = ActionPlanApproval.objects.filter(action_plan__client_id=client_id)
    return rows_erase(rows, text_fields=("comment",), dry_run=dry_run)


def approval_eraser_register() -> None:
    """Called from ``WorkflowConfig.ready()``: approval comments on a client's plans are scrubbed."""
    eraser_register(ActionPlanApproval._meta.db_table, _comments_erase)
