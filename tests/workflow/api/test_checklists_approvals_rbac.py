"""RBAC of the checklist and approval endpoints, as a matrix: every persona against tenant A's task and plan
(the shape of tests/api/test_rbac_matrix.py). Out of scope is 404; in scope but not allowed is 403."""

import pytest

from tests.support.api import bearer_client
from workflow.services.action_plans import action_plan_update
from workflow.services.checklists import checklist_items_add
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db

ROLES = (
    "admin",
    "supervisor",
    "agent",
    "client",
    "other_supervisor",
    "other_agent",
    "other_client",
    "anonymous",
)

ENDPOINTS = {
    "POST checklist": lambda api, ctx: api.post(
        f"/api/workflow/tasks/{ctx['task']}/checklist", {"items": [{"text": "More"}]}, format="json"
    ),
    "PATCH checklist item": lambda api, ctx: api.patch(
        f"/api/workflow/tasks/{ctx['task']}/checklist/{ctx['item']}", {"done": True}, format="json"
    ),
    "POST complete with override": lambda api, ctx: api.post(
        f"/api/workflow/tasks/{ctx['task']}/transition",
        {"target_state": "completed", "reason": "Overridden", "override_checklist": True},
        format="json",
    ),
    "PATCH plan approval_policy": lambda api, ctx: api.patch(
        f"/api/workflow/action-plans/{ctx['plan']}",
        {"approval_policy": {"count": 1, "role": "agency"}},
        format="json",
    ),
    "POST approval": lambda api, ctx: api.post(
        f"/api/workflow/action-plans/{ctx['gated_plan']}/approvals", {"decision": "approve"}, format="json"
    ),
}

# endpoint: (admin, supervisor, agent, client, other_supervisor, other_agent, other_client, anonymous)
EXPECTED = {
    "POST checklist": (201, 201, 201, 403, 404, 404, 404, 401),
    "PATCH checklist item": (200, 200, 200, 403, 404, 404, 404, 401),
    # Agents may not override the checklist (nor may clients complete anything).
    "POST complete with override": (200, 200, 403, 403, 404, 404, 404, 401),
    # Setting a policy on a plan that has none is any staff's; clients 403.
    "PATCH plan approval_policy": (200, 200, 200, 403, 404, 404, 404, 401),
    # The gated plan's policy is {"count": 1, "role": "supervisor"} and the agent created it: only the
    # agency's supervisor may vote (an admin is not a supervisor of the agency; the creator never votes).
    "POST approval": (403, 201, 403, 403, 404, 404, 404, 401),
}

CASES = [(endpoint, role, EXPECTED[endpoint][i]) for endpoint in ENDPOINTS for i, role in enumerate(ROLES)]


@pytest.fixture
def tenant_a(make_task, make_plan, agent):
    task = make_task()
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    (item,) = checklist_items_add(task, [{"text": "Required step"}], actor=agent)
    plan = make_plan()
    gated = make_plan(title="Gated")
    make_task(action_plan=gated)
    action_plan_update(
        action_plan_id=gated.pk, actor=agent, changes={"approval_policy": {"count": 1, "role": "supervisor"}}
    )
    return {"task": str(task.pk), "item": str(item.pk), "plan": str(plan.pk), "gated_plan": str(gated.pk)}


@pytest.fixture
def personas(admin_user, supervisor, agent, client_user, other_supervisor, other_agent, other_client):
    return dict(
        zip(
            ROLES,
            (admin_user, supervisor, agent, client_user, other_supervisor, other_agent, other_client, None),
            strict=True,
        )
    )


def test_matrix_covers_every_endpoint_and_role():
    assert set(EXPECTED) == set(ENDPOINTS)
    assert all(len(row) == len(ROLES) for row in EXPECTED.values())


@pytest.mark.parametrize(("endpoint", "role", "status"), CASES, ids=[f"{e}-{r}" for e, r, _ in CASES])
def test_rbac(endpoint, role, status, tenant_a, personas):
    response = ENDPOINTS[endpoint](bearer_client(personas[role]), tenant_a)
    assert response.status_code == status, (response.status_code, response.content[:300])
