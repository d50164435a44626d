"""RBAC as a matrix: every endpoint by every role, against objects of one tenant (agency A and its client).

``supervisor``/``agent``/``client`` belong to tenant A (own); ``other_supervisor``/``other_agent``/
``other_client`` to tenant B (other). A supervisor does everything an agent does. Out of
scope is 404 for objects in the URL and 400 ("does not exist") for ids in a body; in scope but not allowed
for the role is 403.

One fixture set for the whole matrix: every call runs in a savepoint that is rolled back, so each starts
from the same tenant (a cancel, a delete or a vote changes nothing for the next call) at the cost of one
set-up, and a failure lists every cell that differs.
"""

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from careplans.services.templates import plan_template_create
from routing.models import RoutingRule
from sla.models import SLARepair
from tests.factories import ClientFactory
from tests.support.api import bearer_client
from workflow.services.action_plans import action_plan_update
from workflow.services.checklists import checklist_items_add
from workflow.services.saved_views import saved_view_create

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


BLUEPRINTS = [{"key": "intake", "title": "Intake", "task_type": "intake"}]
REPORT_WINDOW = "from=2026-05-04&to=2026-05-10"

REPORTS = ("sla-attainment", "throughput", "backlog-aging", "time-in-state")


def _report(name):
    return lambda api, ctx: api.get(f"/api/workflow/reports/{name}?{REPORT_WINDOW}&agency={ctx['agency']}")


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
    "PATCH plan": lambda api, ctx: api.patch(
        f"/api/workflow/action-plans/{ctx['plan']}", {"title": "Renamed"}, format="json"
    ),
    # Saved views: A's agent's shared view, and their private one.
    "GET views": lambda api, ctx: api.get("/api/workflow/views"),
    "POST views": lambda api, ctx: api.post(
        "/api/workflow/views", {"name": "New work", "filter": {"state": "new"}}, format="json"
    ),
    "GET shared view": lambda api, ctx: api.get(f"/api/workflow/views/{ctx['view']}"),
    "GET private view": lambda api, ctx: api.get(f"/api/workflow/views/{ctx['private_view']}"),
    "PATCH shared view": lambda api, ctx: api.patch(
        f"/api/workflow/views/{ctx['view']}", {"name": "Renamed"}, format="json"
    ),
    "DELETE shared view": lambda api, ctx: api.delete(f"/api/workflow/views/{ctx['view']}"),
    "GET view tasks": lambda api, ctx: api.get(f"/api/workflow/views/{ctx['view']}/tasks"),
    # Routing: A's rule, A's task, A's agent's profile, A's workload.
    "GET routing rules": lambda api, ctx: api.get("/api/workflow/routing-rules"),
    "POST routing rules": lambda api, ctx: api.post(
        "/api/workflow/routing-rules", {"name": "Intake", "agency": ctx["agency"]}, format="json"
    ),
    "GET routing rule": lambda api, ctx: api.get(f"/api/workflow/routing-rules/{ctx['rule']}"),
    "PATCH routing rule": lambda api, ctx: api.patch(
        f"/api/workflow/routing-rules/{ctx['rule']}", {"enabled": False}, format="json"
    ),
    "DELETE routing rule": lambda api, ctx: api.delete(f"/api/workflow/routing-rules/{ctx['rule']}"),
    "GET assignee suggestions": lambda api, ctx: api.get(
        f"/api/workflow/tasks/{ctx['task']}/assignee-suggestions"
    ),
    "POST task route": lambda api, ctx: api.post(f"/api/workflow/tasks/{ctx['task']}/route"),
    "GET worker profile": lambda api, ctx: api.get(f"/api/workflow/users/{ctx['worker']}"),
    "PATCH worker profile": lambda api, ctx: api.patch(
        f"/api/workflow/users/{ctx['worker']}", {"away": True}, format="json"
    ),
    "GET workload": lambda api, ctx: api.get(f"/api/workflow/workload?agency={ctx['agency']}"),
    # Plan templates: A's template.
    "GET plan templates": lambda api, ctx: api.get("/api/workflow/plan-templates"),
    "POST plan templates": lambda api, ctx: api.post(
        "/api/workflow/plan-templates",
        {"name": "Pathway", "agency": ctx["agency"], "blueprints": BLUEPRINTS},
        format="json",
    ),
    "GET plan template": lambda api, ctx: api.get(f"/api/workflow/plan-templates/{ctx['template']}"),
    "PATCH plan template": lambda api, ctx: api.patch(
        f"/api/workflow/plan-templates/{ctx['template']}", {"name": "Renamed"}, format="json"
    ),
    "POST template version": lambda api, ctx: api.post(
        f"/api/workflow/plan-templates/{ctx['template']}/versions", {"blueprints": BLUEPRINTS}, format="json"
    ),
    # Checklists and approvals: A's task's item; A's draft plan asking one approval of the agency's staff,
    # created by A's agent (who may not approve it).
    "POST checklist": lambda api, ctx: api.post(
        f"/api/workflow/tasks/{ctx['task']}/checklist", {"items": [{"text": "Call back"}]}, format="json"
    ),
    "PATCH checklist item": lambda api, ctx: api.patch(
        f"/api/workflow/tasks/{ctx['task']}/checklist/{ctx['item']}", {"done": True}, format="json"
    ),
    "POST plan approval": lambda api, ctx: api.post(
        f"/api/workflow/action-plans/{ctx['gated_plan']}/approvals", {"decision": "approve"}, format="json"
    ),
    # SLA repairs (admins only) and a task's SLA history.
    "POST sla repair preview": lambda api, ctx: api.post(
        "/api/workflow/sla-repairs", {"recompute": True}, format="json"
    ),
    "GET sla repairs": lambda api, ctx: api.get("/api/workflow/sla-repairs"),
    "GET sla repair": lambda api, ctx: api.get(f"/api/workflow/sla-repairs/{ctx['repair']}"),
    "GET task sla history": lambda api, ctx: api.get(f"/api/workflow/tasks/{ctx['task']}/sla-history"),
    # Reports, filtered to agency A.
    **{f"GET report {name}": _report(name) for name in REPORTS},
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
    "PATCH plan": (200, 200, 200, 403, 404, 404, 404, 401),
    # Saved views: staff only (clients 403 everywhere); a view out of sight is 404; a shared view changes
    # by its owner, admins and the agency's supervisors; a private one is its owner's (and admins').
    "GET views": (200, 200, 200, 403, 200, 200, 403, 401),
    "POST views": (201, 201, 201, 403, 201, 201, 403, 401),
    "GET shared view": (200, 200, 200, 403, 404, 404, 403, 401),
    "GET private view": (200, 404, 200, 403, 404, 404, 403, 401),
    "PATCH shared view": (200, 200, 200, 403, 404, 404, 403, 401),
    "DELETE shared view": (204, 204, 204, 403, 404, 404, 403, 401),
    "GET view tasks": (200, 200, 200, 403, 404, 404, 403, 401),
    # Routing rules and worker profiles: admins, and a supervisor for their agency (another's 404);
    # agents and clients 403. Suggestions and route: the task's agency staff. Workload: staff of the
    # agency (admins name it), clients 403.
    "GET routing rules": (200, 200, 403, 403, 200, 403, 403, 401),
    # Naming another agency in a body is 403, as for client links.
    "POST routing rules": (201, 201, 403, 403, 403, 403, 403, 401),
    "GET routing rule": (200, 200, 403, 403, 404, 403, 403, 401),
    "PATCH routing rule": (200, 200, 403, 403, 404, 403, 403, 401),
    "DELETE routing rule": (204, 204, 403, 403, 404, 403, 403, 401),
    "GET assignee suggestions": (200, 200, 200, 403, 404, 404, 403, 401),
    "POST task route": (200, 200, 200, 403, 404, 404, 403, 401),
    "GET worker profile": (200, 200, 403, 403, 404, 403, 403, 401),
    "PATCH worker profile": (200, 200, 403, 403, 404, 403, 403, 401),
    "GET workload": (200, 200, 200, 403, 404, 404, 403, 401),
    # Plan templates: staff read their agency's (clients 403); admins and the agency's supervisors manage.
    "GET plan templates": (200, 200, 200, 403, 200, 200, 403, 401),
    "POST plan templates": (201, 201, 403, 403, 403, 403, 403, 401),
    "GET plan template": (200, 200, 200, 403, 404, 404, 403, 401),
    "PATCH plan template": (200, 200, 403, 403, 404, 404, 403, 401),
    "POST template version": (201, 201, 403, 403, 404, 404, 403, 401),
    # Checklists: admins and the task's agency staff; the task's client reads only (403); others 404.
    "POST checklist": (201, 201, 201, 403, 404, 404, 404, 401),
    "PATCH checklist item": (200, 200, 200, 403, 404, 404, 404, 401),
    # Approvals under {"count": 1, "role": "agency"}: the agency's staff, never the plan's creator (the
    # agent); an admin is not of the role (403); another tenant 404.
    "POST plan approval": (403, 201, 403, 403, 404, 404, 404, 401),
    # SLA repairs: admins only. A task's SLA history: staff, scoped like the task; clients 403.
    "POST sla repair preview": (200, 403, 403, 403, 403, 403, 403, 401),
    "GET sla repairs": (200, 403, 403, 403, 403, 403, 403, 401),
    "GET sla repair": (200, 403, 403, 403, 403, 403, 403, 401),
    "GET task sla history": (200, 200, 200, 403, 404, 404, 403, 401),
    # Reports: admins any agency; staff their own (another agency 404); clients 403.
    **{f"GET report {name}": (200, 200, 200, 403, 404, 404, 403, 401) for name in REPORTS},
}


@pytest.fixture
def tenant_a(make_task, make_plan, client_user, agent, supervisor, admin_user, agency):
    plan = make_plan()
    make_task(action_plan=plan)
    task = make_task()
    gated = make_plan(title="Needs approval")
    make_task(action_plan=gated)
    action_plan_update(
        action_plan_id=gated.pk, actor=agent, changes={"approval_policy": {"count": 1, "role": "agency"}}
    )
    (item,) = checklist_items_add(task, [{"text": "Check ID", "required": True}], actor=agent)
    template = plan_template_create(
        actor=supervisor, agency=agency, name="A's own pathway", blueprints=BLUEPRINTS
    )
    repair = SLARepair.objects.create(
        change={"kind": "recompute"}, scope={"open": True}, as_of=timezone.now(), requested_by=admin_user
    )
    return {
        "agency": str(agency.pk),
        "unserved": ClientFactory(agency=None).pk,
        "client": client_user.pk,
        "task": str(task.pk),
        "plan": str(plan.pk),
        "draft_plan": str(make_plan(title="Draft").pk),
        "gated_plan": str(gated.pk),
        "item": str(item.pk),
        "view": str(saved_view_create(actor=agent, name="Shared", filter={"state": "new"}, shared=True).pk),
        "private_view": str(saved_view_create(actor=agent, name="Mine", filter={"assignee": "me"}).pk),
        "rule": str(RoutingRule.objects.create(agency=agency, name="intake").pk),
        "worker": agent.pk,
        "template": str(template.pk),
        "template_name": template.name,  # its id is a small integer: found by name
        "repair": str(repair.pk),
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


# What a role's answers must never show, whatever the endpoint: tenant B nothing of A's; A's supervisor
# not the agent's private view.
A_OBJECTS = (
    "task",
    "plan",
    "draft_plan",
    "gated_plan",
    "item",
    "view",
    "private_view",
    "rule",
    "template_name",
)
UNSEEN = {
    "supervisor": ("private_view",),
    **{role: A_OBJECTS for role in ("other_supervisor", "other_agent", "other_client")},
}


def _call(endpoint, api, ctx):
    """One call from the same tenant: in a savepoint rolled back after it (and throttles reset, as the
    matrix makes more anonymous calls than a minute allows)."""
    cache.clear()
    with transaction.atomic():
        response = ENDPOINTS[endpoint](api, ctx)
        transaction.set_rollback(True)
    return response


def test_rbac(tenant_a, personas):
    apis = {role: bearer_client(personas[role]) for role in ROLES}
    wrong = []
    for endpoint, expected in EXPECTED.items():
        for role, status in zip(ROLES, expected, strict=True):
            response = _call(endpoint, apis[role], tenant_a)
            if response.status_code != status:
                body = response.content[:200]
                wrong.append(f"{endpoint} as {role}: {response.status_code}, expected {status} {body!r}")
            elif status >= 400 and response.json()["success"] is not False:
                wrong.append(f"{endpoint} as {role}: {status} without the error envelope")
            elif leaked := [
                key for key in UNSEEN.get(role, ()) if tenant_a[key] in response.content.decode()
            ]:
                wrong.append(f"{endpoint} as {role}: {status} shows {', '.join(leaked)}")
    assert wrong == [], "\n".join(wrong)


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
