"""Approvals over HTTP: PATCH the plan's policy, POST votes, GET where the approval stands; clients see the
counts but not the votes, cannot vote; other agencies get 404; bad bodies are 400s."""

import pytest

from tests.factories import SupervisorFactory
from tests.support.api import assert_envelope
from workflow.models import ActionPlanApproval

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(make_plan, make_task):
    plan = make_plan()
    make_task(action_plan=plan)
    return plan


def url(plan, tail=""):
    return f"/api/workflow/action-plans/{plan.pk}{tail}"


def vote(api, plan, decision="approve", comment=None):
    body = {"decision": decision} | ({} if comment is None else {"comment": comment})
    return api.post(url(plan, "/approvals"), body, format="json")


def test_policy_votes_and_activation(agent_api, api_for, plan, supervisor, agency):
    second = SupervisorFactory(agency=agency)
    patched = agent_api.patch(
        url(plan), {"approval_policy": {"count": 2, "approvers": [supervisor.pk, second.pk]}}, format="json"
    )
    assert patched.status_code == 200, patched.json()
    body = patched.json()
    assert body["approval_policy"] == {"count": 2, "approvers": [supervisor.pk, second.pk]}
    assert body["approval"]["still_needed"] == 2
    assert body["approval"]["pending_approvers"] == [supervisor.pk, second.pk]
    assert "active" not in body["available_transitions"]
    refused = agent_api.post(url(plan, "/activate"), {}, format="json")
    assert assert_envelope(refused, 400, "GUARD_FAILED")["details"]["guards"] == ["approved"]

    first = vote(api_for(supervisor), plan, comment="Fine by me")
    assert first.status_code == 201, first.json()
    assert first["ETag"] == f'"{first.json()["version"]}"'
    approval = first.json()["approval"]
    assert approval["approvals"] == 1
    assert approval["still_needed"] == 1
    assert approval["votes"][0]["comment"] == "Fine by me"
    assert approval["votes"][0]["approver"] == supervisor.pk
    assert_envelope(vote(api_for(supervisor), plan), 409, "APPROVAL_ALREADY_RECORDED")

    second_vote = vote(api_for(second), plan)
    assert second_vote.json()["approval"]["approved"] is True
    assert "active" in second_vote.json()["available_transitions"]
    activated = agent_api.post(url(plan, "/activate"), {}, format="json")
    assert activated.status_code == 200, activated.json()
    assert activated.json()["action_plan"]["state"] == "active"
    assert_envelope(vote(api_for(supervisor), plan), 409, "APPROVAL_NOT_OPEN")


def test_a_rejection_over_http(agent_api, api_for, plan, supervisor):
    agent_api.patch(url(plan), {"approval_policy": {"count": 1, "role": "supervisor"}}, format="json")
    assert_envelope(vote(api_for(supervisor), plan, "reject"), 400, "VALIDATION_ERROR")
    rejected = vote(api_for(supervisor), plan, "reject", "Add the budget")
    assert rejected.status_code == 201, rejected.json()
    body = rejected.json()
    assert body["state"] == "draft"
    assert body["approval"]["approvals"] == 0
    assert body["approval"]["last_rejection"]["comment"] == "Add the budget"
    assert agent_api.get(url(plan)).json()["approval"]["last_rejection"]["comment"] == "Add the budget"


def test_clients_see_the_counts_not_the_votes_and_cannot_vote(
    agent_api, api_for, client_api, plan, supervisor
):
    agent_api.patch(url(plan), {"approval_policy": {"count": 2, "role": "supervisor"}}, format="json")
    vote(api_for(supervisor), plan, comment="Internal remark")
    seen = client_api.get(url(plan)).json()
    assert seen["approval"]["approvals"] == 1
    assert seen["approval"]["still_needed"] == 1
    assert "votes" not in seen["approval"]
    assert "last_rejection" not in seen["approval"]
    assert "Internal remark" not in str(seen)
    assert_envelope(vote(client_api, plan), 403, "PERMISSION_DENIED")
    assert_envelope(
        client_api.patch(url(plan), {"approval_policy": None}, format="json"), 403, "PERMISSION_DENIED"
    )
    listed = client_api.get("/api/workflow/action-plans").json()["results"]
    assert listed[0]["approval_policy"] == {"count": 2, "role": "supervisor"}


def test_other_agencies_get_404(agent_api, api_for, other_agent_api, other_supervisor, plan):
    agent_api.patch(url(plan), {"approval_policy": {"count": 1, "role": "supervisor"}}, format="json")
    assert_envelope(vote(api_for(other_supervisor), plan), 404, "NOT_FOUND")
    assert_envelope(
        other_agent_api.patch(url(plan), {"approval_policy": None}, format="json"), 404, "NOT_FOUND"
    )
    assert not ActionPlanApproval.objects.exists()


def test_an_agent_cannot_lift_a_policy_but_a_supervisor_can(agent_api, api_for, plan, supervisor):
    agent_api.patch(url(plan), {"approval_policy": {"count": 1, "role": "supervisor"}}, format="json")
    lifted = agent_api.patch(url(plan), {"approval_policy": None}, format="json")
    assert_envelope(lifted, 403, "PERMISSION_DENIED")
    by_supervisor = api_for(supervisor).patch(url(plan), {"approval_policy": None}, format="json")
    assert by_supervisor.status_code == 200, by_supervisor.json()
    assert by_supervisor.json()["approval"] is None
    assert by_supervisor.json()["approval_policy"] is None


@pytest.mark.parametrize(
    "policy",
    [
        {"count": 0, "role": "supervisor"},
        {"count": 1},
        {"count": 1, "role": "boss"},
        {"count": 1, "role": "supervisor", "approvers": [1]},
        {"count": 1, "role": "supervisor", "extra": True},
        {"count": 3, "approvers": [1, 2]},
        {"count": 1, "approvers": [999999]},
        {"count": 1, "approvers": list(range(1, 30))},
        {"count": "one", "role": "supervisor"},
        "supervisor",
    ],
)
def test_bad_policies_are_400(agent_api, plan, policy):
    response = agent_api.patch(url(plan), {"approval_policy": policy}, format="json")
    assert_envelope(response, 400, "VALIDATION_ERROR")
    assert agent_api.get(url(plan)).json()["approval_policy"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"decision": "maybe"},
        {"decision": "approve", "comment": "x" * 2001},
        {"decision": "approve", "who": 1},
    ],
)
def test_bad_votes_are_400(agent_api, api_for, plan, supervisor, body):
    agent_api.patch(url(plan), {"approval_policy": {"count": 1, "role": "supervisor"}}, format="json")
    response = api_for(supervisor).post(url(plan, "/approvals"), body, format="json")
    assert_envelope(response, 400, "VALIDATION_ERROR")
