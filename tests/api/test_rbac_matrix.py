"""RBAC as a matrix: every endpoint by every role, against objects of one tenant (agency A and its client).

``supervisor``/``agent``/``client`` belong to tenant A (own); ``other_supervisor``/``other_agent``/
``other_client`` to tenant B (other). A supervisor does everything an agent does. Out of
scope is 404 for objects in the URL and 400 ("does not exist") for ids in a body; in scope but not allowed
for the role is 403.
"""

import pytest

from tests.factories import ClientFactory
from tests.support.api import bearer_client

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


def _create_task(api, ctx):
    return api.post(
        "/api/workflow/tasks",
        {"title": "Intake", "task_type": "intake", "client": ctx["client"]},
        format="json",
    )


def _create_plan(api, ctx):
    return api.post("/api/workflow/action-plans", {"title": "Plan", "client": ctx["client"]}, format="json")


ENDPOINTS = {
    "GET me": lambda api, ctx: api.get("/api/auth/me"),
    "GET tasks": lambda api, ctx: api.get("/api/workflow/tasks"),
    "POST tasks": _create_task,
    "GET task": lambda api, ctx: api.get(f"/api/workflow/tasks/{ctx['task']}"),
    "POST task cancel": lambda api, ctx: api.post(
        f"/api/workflow/tasks/{ctx['task']}/transition", {"target_state": "cancelled"}, format="json"
    ),
    "POST task start": lambda api, ctx: api.post(
        f"/api/workflow/tasks/{ctx['task']}/transition", {"target_state": "in_progress"}, format="json"
    ),
    "GET task events": lambda api, ctx: api.get(f"/api/workflow/tasks/{ctx['task']}/events"),
    "GET plans": lambda api, ctx: api.get("/api/workflow/action-plans"),
    "POST plans": _create_plan,
    "GET plan": lambda api, ctx: api.get(f"/api/workflow/action-plans/{ctx['plan']}"),
    "POST plan activate": lambda api, ctx: api.post(f"/api/workflow/action-plans/{ctx['plan']}/activate"),
    "POST plan archive": lambda api, ctx: api.post(f"/api/workflow/action-plans/{ctx['draft_plan']}/archive"),
    "GET metadata": lambda api, ctx: api.get("/api/workflow/metadata"),
    "GET users": lambda api, ctx: api.get("/api/workflow/users"),
    "POST link own client": lambda api, ctx: api.post(
        f"/api/workflow/users/{ctx['client']}/agencies", {"agency": ctx["agency"]}, format="json"
    ),
    "POST link unserved client": lambda api, ctx: api.post(
        f"/api/workflow/users/{ctx['unserved']}/agencies", {"agency": ctx["agency"]}, format="json"
    ),
    "DELETE link": lambda api, ctx: api.delete(
        f"/api/workflow/users/{ctx['client']}/agencies/{ctx['agency']}"
    ),
    "GET schema": lambda api, ctx: api.get("/api/schema/"),
    "GET docs": lambda api, ctx: api.get("/api/docs/"),
}

# endpoint: (admin, supervisor, agent, client, other_supervisor, other_agent, other_client, anonymous)
EXPECTED = {
    "GET me": (200, 200, 200, 200, 200, 200, 200, 401),
    "GET tasks": (200, 200, 200, 200, 200, 200, 200, 401),
    "POST tasks": (201, 201, 201, 201, 400, 400, 400, 401),
    "GET task": (200, 200, 200, 200, 404, 404, 404, 401),
    "POST task cancel": (200, 200, 200, 200, 404, 404, 404, 401),
    "POST task start": (200, 200, 200, 403, 404, 404, 404, 401),
    "GET task events": (200, 200, 200, 200, 404, 404, 404, 401),
    "GET plans": (200, 200, 200, 200, 200, 200, 200, 401),
    "POST plans": (201, 201, 201, 403, 400, 400, 400, 401),
    "GET plan": (200, 200, 200, 200, 404, 404, 404, 401),
    "POST plan activate": (200, 200, 200, 403, 404, 404, 404, 401),
    "POST plan archive": (200, 200, 200, 403, 404, 404, 404, 401),
    "GET metadata": (200, 200, 200, 200, 200, 200, 200, 401),
    "GET users": (200, 200, 200, 200, 200, 200, 200, 401),
    # Client links (agency A): admins, and A's supervisor; B's supervisor does not see A's client (404)
    # and may not link anyone to A (403); agents and clients never manage links (403).
    "POST link own client": (200, 200, 403, 403, 404, 403, 403, 401),
    "POST link unserved client": (201, 201, 403, 403, 403, 403, 403, 401),
    "DELETE link": (204, 204, 403, 403, 404, 403, 403, 401),
    "GET schema": (200, 200, 200, 200, 200, 200, 200, 200),
    "GET docs": (200, 200, 200, 200, 200, 200, 200, 200),
}

CASES = [(endpoint, role, EXPECTED[endpoint][i]) for endpoint in ENDPOINTS for i, role in enumerate(ROLES)]


@pytest.fixture
def tenant_a(make_task, make_plan, client_user, agency):
    plan = make_plan()
    make_task(action_plan=plan)
    return {
        "agency": str(agency.pk),
        "unserved": ClientFactory(agency=None).pk,
        "client": client_user.pk,
        "task": str(make_task().pk),
        "plan": str(plan.pk),
        "draft_plan": str(make_plan(title="Draft").pk),
    }


@pytest.fixture
def personas(admin_user, supervisor, agent, client_user, other_supervisor, other_agent, other_client):
    return {
        "admin": admin_user,
        "supervisor": supervisor,
        "agent": agent,
        "client": client_user,
        "other_supervisor": other_supervisor,
        "other_agent": other_agent,
        "other_client": other_client,
        "anonymous": None,
    }


def test_matrix_covers_every_endpoint_and_role():
    assert set(EXPECTED) == set(ENDPOINTS)
    assert all(len(row) == len(ROLES) for row in EXPECTED.values())


@pytest.mark.parametrize(("endpoint", "role", "status"), CASES, ids=[f"{e} as {r}" for e, r, _ in CASES])
def test_rbac(endpoint, role, status, tenant_a, personas):
    response = ENDPOINTS[endpoint](bearer_client(personas[role]), tenant_a)
    assert response.status_code == status, response.content[:300]
    if status >= 400:
        assert response.json()["success"] is False


@pytest.mark.parametrize(
    ("role", "tasks", "plans"),
    [
        ("admin", 4, 4),
        ("supervisor", 2, 2),
        ("agent", 2, 2),
        ("client", 2, 2),
        ("other_supervisor", 2, 2),
        ("other_agent", 2, 2),
        ("other_client", 2, 2),
    ],
)
def test_lists_show_only_the_callers_scope(
    role, tasks, plans, personas, make_task, make_plan, other_agent, other_client, other_agency
):
    for _ in range(2):
        make_task()
        make_plan()
        make_task(actor=other_agent, client=other_client, agency=other_agency, assignee=other_agent)
        make_plan(actor=other_agent, client=other_client, agency=other_agency)
    api = bearer_client(personas[role])
    assert api.get("/api/workflow/tasks").json()["count"] == tasks
    assert api.get("/api/workflow/action-plans").json()["count"] == plans
    own_agency = personas[role].agency_id
    if own_agency is not None:
        for task in api.get("/api/workflow/tasks").json()["results"]:
            assert task["agency"] == str(own_agency)
