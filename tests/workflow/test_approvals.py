"""Plan approvals (services): the policy's validation, N of M eligible approvals before activation, who may
not vote (the creator, staff not named, clients, other agencies), one vote per round, a rejection starting a
new round, and the policy's change (who may, audited, a new round)."""

import pytest

from outbox.models import OutboxEvent
from polaris.audit.models import AuditEntry
from polaris.errors import Conflict, GuardFailed, NotFound, PermissionDenied, ValidationFailed
from tests.factories import AdminFactory, AgentFactory, SupervisorFactory
from workflow.errors import ApprovalAlreadyRecorded, ApprovalNotOpen
from workflow.guards import approved
from workflow.models import ActionPlan, ActionPlanApproval
from workflow.selectors import approval_status
from workflow.services.action_plans import action_plan_activate, action_plan_update
from workflow.services.approvals import action_plan_approval_record, approval_policy_validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisors(agency, supervisor):
    return [supervisor, *(SupervisorFactory(agency=agency) for _ in range(2))]


@pytest.fixture
def plan(make_plan, make_task):
    plan = make_plan()  # created by the agent
    make_task(action_plan=plan)
    return plan


def set_policy(plan, policy, actor):
    plan, _ = action_plan_update(action_plan_id=plan.pk, actor=actor, changes={"approval_policy": policy})
    return plan


def vote(plan, actor, decision="approve", comment=""):
    return action_plan_approval_record(
        action_plan_id=plan.pk, actor=actor, decision=decision, comment=comment
    )


def test_policy_validation(agency, other_agency, supervisor, agent, client_user, other_agent):
    admin = AdminFactory()
    assert approval_policy_validate(None, agency) is None
    assert approval_policy_validate({"count": 1, "role": "supervisor"}, agency) == {
        "count": 1,
        "role": "supervisor",
    }
    ok = approval_policy_validate({"count": 2, "approvers": [supervisor.pk, agent.pk, admin.pk]}, agency.pk)
    assert ok == {"count": 2, "approvers": [supervisor.pk, agent.pk, admin.pk]}
    bad = [
        [],
        "supervisor",
        {"count": 1},
        {"count": 0, "role": "supervisor"},
        {"count": 21, "role": "supervisor"},
        {"count": True, "role": "supervisor"},
        {"count": "1", "role": "supervisor"},
        {"count": 1, "role": "boss"},
        {"count": 1, "role": "supervisor", "approvers": [supervisor.pk]},
        {"count": 1, "role": "supervisor", "extra": 1},
        {"count": 2, "approvers": [supervisor.pk]},
        {"count": 1, "approvers": []},
        {"count": 1, "approvers": [supervisor.pk, supervisor.pk]},
        {"count": 1, "approvers": ["7"]},
        {"count": 1, "approvers": [client_user.pk]},
        {"count": 1, "approvers": [other_agent.pk]},
        {"count": 1, "approvers": [2**62]},
        {"count": 1, "approvers": list(range(1, 52))},
    ]
    for value in bad:
        with pytest.raises(ValidationFailed) as refused:
            approval_policy_validate(value, agency)
        assert refused.value.error_code == "VALIDATION_ERROR"
        assert list(refused.value.details) == ["approval_policy"], value
    with pytest.raises(ValidationFailed):
        approval_policy_validate({"count": 1, "approvers": [agent.pk]}, other_agency)


def test_two_of_three_approvals_before_activation(plan, agent, supervisors):
    plan = set_policy(plan, {"count": 2, "approvers": [s.pk for s in supervisors]}, agent)
    with pytest.raises(GuardFailed) as refused:
        action_plan_activate(action_plan_id=plan.pk, actor=agent)
    assert refused.value.details["guards"] == ["approved"]

    plan, approval, event = vote(plan, supervisors[0], comment="Looks right")
    assert event.event_type == "ActionPlanApprovalRecorded"
    assert event.payload["approvals"] == 1
    assert event.payload["required"] == 2
    assert event.payload["approved"] is False
    assert event.payload["approver_id"] == supervisors[0].pk
    assert "Looks right" not in str(event.payload)  # the comment's words stay on the row
    assert approval.comment == "Looks right"
    with pytest.raises(GuardFailed):
        action_plan_activate(action_plan_id=plan.pk, actor=agent)
    status = approval_status(ActionPlan.objects.get(pk=plan.pk), staff=True)
    assert status["still_needed"] == 1
    assert status["pending_approvers"] == [supervisors[1].pk, supervisors[2].pk]

    plan, _, event = vote(plan, supervisors[2])
    assert event.payload["approved"] is True
    plan, _ = action_plan_activate(action_plan_id=plan.pk, actor=agent)
    assert plan.state == "active"
    events = OutboxEvent.objects.filter(aggregate_id=plan.pk).order_by("sequence")
    assert [e.sequence for e in events] == list(range(1, plan.version + 1))
    with pytest.raises(ApprovalNotOpen):  # no more votes once active
        vote(plan, supervisors[1])


def test_who_may_not_vote(plan, agent, supervisor, client_user, other_supervisor, agency):
    creator_listed = set_policy(plan, {"count": 1, "approvers": [agent.pk, supervisor.pk]}, agent)
    with pytest.raises(PermissionDenied) as own:
        vote(creator_listed, agent)  # four eyes: never the plan's creator
    assert own.value.details == {"approver": "the plan's creator"}
    assert approval_status(ActionPlan.objects.get(pk=plan.pk), staff=True)["pending_approvers"] == [
        supervisor.pk
    ]
    with pytest.raises(PermissionDenied):
        vote(plan, SupervisorFactory(agency=agency))  # staff not named by the policy
    with pytest.raises(PermissionDenied):
        vote(plan, client_user)
    with pytest.raises(NotFound):
        vote(plan, other_supervisor)
    assert not ActionPlanApproval.objects.exists()


def test_a_role_policy(plan, agent, supervisor, agency):
    set_policy(plan, {"count": 1, "role": "supervisor"}, agent)
    with pytest.raises(PermissionDenied):
        vote(plan, AgentFactory(agency=agency))
    vote(plan, supervisor)
    action_plan_activate(action_plan_id=plan.pk, actor=agent)


def test_an_admin_role_policy_takes_admins_only(plan, agent, supervisor):
    set_policy(plan, {"count": 1, "role": "admin"}, agent)
    with pytest.raises(PermissionDenied):
        vote(plan, supervisor)
    vote(plan, AdminFactory())
    assert approved(ActionPlan.objects.get(pk=plan.pk))


def test_an_agency_role_policy_takes_any_staff_but_the_creator(plan, agent, agency):
    set_policy(plan, {"count": 1, "role": "agency"}, agent)
    with pytest.raises(PermissionDenied):
        vote(plan, agent)
    vote(plan, AgentFactory(agency=agency))
    assert approved(ActionPlan.objects.get(pk=plan.pk))


def test_one_vote_per_approver_per_round(plan, agent, supervisors):
    set_policy(plan, {"count": 2, "role": "supervisor"}, agent)
    vote(plan, supervisors[0])
    with pytest.raises(ApprovalAlreadyRecorded):
        vote(plan, supervisors[0])
    with pytest.raises(ApprovalAlreadyRecorded):
        vote(plan, supervisors[0], "reject", "Changed my mind")
    assert ActionPlanApproval.objects.count() == 1


def test_a_rejection_resets_the_round_and_shows_its_comment(plan, agent, supervisors):
    set_policy(plan, {"count": 2, "role": "supervisor"}, agent)
    vote(plan, supervisors[0])
    with pytest.raises(ValidationFailed):
        vote(plan, supervisors[1], "reject")  # a rejection says why
    plan, _, event = vote(plan, supervisors[1], "reject", "The budget line is missing")
    assert plan.state == "draft"
    assert plan.approval_round == 3  # 1 before any policy, 2 from setting it, 3 after the rejection
    assert event.payload["decision"] == "reject"
    assert event.payload["round"] == 2
    assert event.payload["approvals"] == 0
    status = approval_status(ActionPlan.objects.get(pk=plan.pk), staff=True)
    assert status["round"] == 3
    assert status["approvals"] == 0
    assert status["votes"] == []
    assert status["last_rejection"]["comment"] == "The budget line is missing"
    assert status["last_rejection"]["approver"] == supervisors[1].pk
    client_view = approval_status(ActionPlan.objects.get(pk=plan.pk), staff=False)
    assert "votes" not in client_view
    assert "last_rejection" not in client_view

    vote(plan, supervisors[0])  # everyone votes again in the new round
    with pytest.raises(GuardFailed):
        action_plan_activate(action_plan_id=plan.pk, actor=agent)
    vote(plan, supervisors[1])
    plan, _ = action_plan_activate(action_plan_id=plan.pk, actor=agent)
    assert plan.state == "active"


def test_votes_need_a_draft_with_a_policy(plan, agent, supervisor):
    with pytest.raises(ApprovalNotOpen):
        vote(plan, supervisor)
    set_policy(plan, {"count": 1, "role": "supervisor"}, agent)
    with pytest.raises(ValidationFailed):
        vote(plan, supervisor, "maybe")
    with pytest.raises(ValidationFailed):
        vote(plan, supervisor, "approve", "x" * 2001)


def test_setting_and_changing_the_policy(plan, agent, supervisor, supervisors):
    plan = set_policy(plan, {"count": 1, "role": "supervisor"}, agent)  # any staff may set one
    assert plan.approval_round == 2
    entry = AuditEntry.objects.get(action="action_plan.approval_policy_changed")
    assert entry.before == {"approval_policy": None}
    assert entry.after == {"approval_policy": {"count": 1, "role": "supervisor"}, "approval_round": 2}
    event = OutboxEvent.objects.filter(aggregate_id=plan.pk).order_by("-sequence").first()
    assert event.event_type == "ActionPlanUpdated"
    assert event.payload["changes"]["approval_policy"] == {
        "old": None,
        "new": {"count": 1, "role": "supervisor"},
    }

    vote(plan, supervisors[1])
    with pytest.raises(PermissionDenied):  # the people a policy gates cannot lift it
        set_policy(plan, None, agent)
    with pytest.raises(PermissionDenied):
        set_policy(plan, {"count": 2, "role": "supervisor"}, agent)
    set_policy(plan, {"count": 1, "role": "supervisor"}, agent)  # unchanged: nothing happens
    assert AuditEntry.objects.filter(action="action_plan.approval_policy_changed").count() == 1

    plan = set_policy(plan, {"count": 2, "role": "supervisor"}, supervisor)
    assert plan.approval_round == 3
    assert not approved(ActionPlan.objects.get(pk=plan.pk))  # the earlier approval no longer counts
    plan = set_policy(plan, None, supervisor)
    assert approved(ActionPlan.objects.get(pk=plan.pk))
    assert AuditEntry.objects.filter(action="action_plan.approval_policy_changed").count() == 3
    action_plan_activate(action_plan_id=plan.pk, actor=agent)
    with pytest.raises(Conflict):  # only a draft's policy changes
        set_policy(plan, {"count": 1, "role": "supervisor"}, supervisor)


def test_a_client_cannot_set_a_policy(plan, client_user):
    with pytest.raises(PermissionDenied):
        set_policy(plan, {"count": 1, "role": "supervisor"}, client_user)
