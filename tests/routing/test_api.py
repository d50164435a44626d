"""The routing API: rules (CRUD, audited, scoped), worker profiles, suggestions, route, workload, RBAC."""

import pytest

from outbox.models import OutboxEvent
from polaris.audit.models import AuditEntry
from routing.models import RoutingRule, WorkerProfile
from tests.factories import AgentFactory
from tests.support.api import assert_envelope, bearer_client
from workflow.models import Task

pytestmark = pytest.mark.django_db

RULES = "/api/workflow/routing-rules"


@pytest.fixture
def supervisor_api(supervisor):
    return bearer_client(supervisor)


@pytest.fixture
def other_supervisor_api(other_supervisor):
    return bearer_client(other_supervisor)


def test_a_supervisor_manages_their_agencys_rules_and_every_change_is_audited(supervisor_api, team, agency):
    created = supervisor_api.post(
        RULES,
        {
            "name": "Housing intake",
            "match_task_types": ["intake"],
            "match_service_areas": ["housing"],
            "match_priorities": ["normal", "high"],
            "strategy": "round_robin",
            "candidates": [team[0].pk, team[1].pk],
            "capacity": 5,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    rule = created.json()
    assert (rule["agency"], rule["candidates"], rule["strategy"]) == (
        str(agency.pk),
        [team[0].pk, team[1].pk],
        "round_robin",
    )
    url = f"{RULES}/{rule['id']}"
    changed = supervisor_api.patch(url, {"enabled": False, "candidates": [team[2].pk]}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["enabled"], changed.json()["candidates"]) == (False, [team[2].pk])
    assert supervisor_api.get(RULES).json()["results"][0]["id"] == rule["id"]
    assert supervisor_api.delete(url).status_code == 204
    entries = AuditEntry.objects.filter(object_id=rule["id"]).order_by("id")
    assert [e.action for e in entries] == [
        "routing_rule.created",
        "routing_rule.updated",
        "routing_rule.deleted",
    ]
    assert entries[1].before["candidates"] == [team[0].pk, team[1].pk]
    assert entries[1].after["candidates"] == [team[2].pk]


def test_bad_rules_are_400_with_the_field_named(supervisor_api, other_agent, admin_api):
    bad = supervisor_api.post(RULES, {"name": "x", "strategy": "random"}, format="json")
    assert "strategy" in assert_envelope(bad, 400, "VALIDATION_ERROR")["details"]
    outsider = supervisor_api.post(RULES, {"name": "x", "candidates": [other_agent.pk]}, format="json")
    assert "candidates" in assert_envelope(outsider, 400, "VALIDATION_ERROR")["details"]
    huge = supervisor_api.post(RULES, {"name": "x", "match_task_types": ["a"] * 51}, format="json")
    assert_envelope(huge, 400, "VALIDATION_ERROR")
    unknown = supervisor_api.post(RULES, {"name": "x", "colour": "red"}, format="json")
    assert_envelope(unknown, 400, "VALIDATION_ERROR")
    # An admin names the agency.
    assert_envelope(admin_api.post(RULES, {"name": "x"}, format="json"), 400, "VALIDATION_ERROR")
    assert RoutingRule.objects.count() == 0


def test_rules_rbac(make_rule, other_supervisor_api, agent_api, client_api, admin_api, other_agency):
    rule = make_rule()
    url = f"{RULES}/{rule.pk}"
    assert admin_api.get(url).status_code == 200
    assert_envelope(other_supervisor_api.get(url), 404, "NOT_FOUND")
    assert_envelope(other_supervisor_api.patch(url, {"name": "mine"}, format="json"), 404, "NOT_FOUND")
    assert_envelope(other_supervisor_api.delete(url), 404, "NOT_FOUND")
    assert other_supervisor_api.get(RULES).json()["results"] == []
    for api in (agent_api, client_api):
        assert_envelope(api.get(RULES), 403, "PERMISSION_DENIED")
        assert_envelope(api.get(url), 403, "PERMISSION_DENIED")
    # B's supervisor may not create a rule for A.
    refused = other_supervisor_api.post(RULES, {"name": "x", "agency": str(rule.agency_id)}, format="json")
    assert_envelope(refused, 403, "PERMISSION_DENIED")
    assert (
        admin_api.post(RULES, {"name": "x", "agency": str(other_agency.pk)}, format="json").status_code == 201
    )
    assert_envelope(admin_api.get(f"{RULES}/not-a-uuid"), 404, "NOT_FOUND")


def test_away_and_delegate_through_patch_users(supervisor_api, other_supervisor_api, agent_api, team):
    a, b = team[:2]
    url = f"/api/workflow/users/{a.pk}"
    response = supervisor_api.patch(url, {"away": True, "delegate": b.pk, "capacity": 4}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() | {"open": 0} == {
        "id": a.pk,
        "away": True,
        "delegate": b.pk,
        "service_areas": [],
        "task_types": [],
        "capacity": 4,
        "open": 0,
        "weighted_load": 0,
    }
    assert WorkerProfile.objects.get(pk=a.pk).delegate_id == b.pk
    entry = AuditEntry.objects.get(action="worker_profile.updated")
    assert (entry.before["away"], entry.after["away"], entry.after["delegate"]) == (False, True, b.pk)
    assert_envelope(supervisor_api.patch(url, {"delegate": a.pk}, format="json"), 400, "VALIDATION_ERROR")
    assert_envelope(other_supervisor_api.patch(url, {"away": False}, format="json"), 404, "NOT_FOUND")
    assert_envelope(agent_api.patch(url, {"away": False}, format="json"), 403, "PERMISSION_DENIED")
    assert_envelope(supervisor_api.patch(url, {"away": "yes"}, format="json"), 400, "VALIDATION_ERROR")
    assert supervisor_api.get(url).json()["away"] is True


def test_suggestions_explain_themselves(agent_api, client_api, other_agent_api, team, make_rule, make_task):
    a, b, c, d = team
    WorkerProfile.objects.create(user=a, away=True)
    WorkerProfile.objects.create(user=b, service_areas=["benefits"])
    make_task(assignee=c, priority="urgent")
    task = make_task(assignee=None, priority="low")  # before the rule: not routed at creation
    make_rule(name="Intake", strategy="least_loaded", candidates=team, client_affinity=False)
    body = agent_api.get(f"/api/workflow/tasks/{task.pk}/assignee-suggestions").json()
    assert [s["user"] for s in body["suggestions"]] == [d.pk, c.pk]
    top = body["suggestions"][0]
    assert top["score"] > body["suggestions"][1]["score"]
    assert any(r["code"] == "LOAD" and r["message"] for r in top["reasons"])
    excluded = {item["user"]: [r["code"] for r in item["reasons"]] for item in body["excluded"]}
    assert excluded == {a.pk: ["AWAY"], b.pk: ["SKILL_MISMATCH"]}
    assert body["reasons"][0]["code"] == "RULE_MATCHED"
    assert Task.objects.get(pk=task.pk).assignee_id is None  # nothing written
    url = f"/api/workflow/tasks/{task.pk}/assignee-suggestions"
    assert_envelope(client_api.get(url), 403, "PERMISSION_DENIED")
    assert_envelope(other_agent_api.get(url), 404, "NOT_FOUND")


def test_route_assigns_or_says_why_not(agent_api, other_agent_api, client_api, team, make_rule, make_task):
    task = make_task(assignee=None)
    url = f"/api/workflow/tasks/{task.pk}/route"
    no_rule = agent_api.post(url).json()
    assert (no_rule["assigned"], no_rule["event"], no_rule["reasons"][0]["code"]) == (
        False,
        None,
        "NO_RULE_MATCHED",
    )
    rule = make_rule(candidates=team[:1])
    routed = agent_api.post(url)
    assert routed.status_code == 200
    assert (routed.json()["assignee"], routed.json()["rule"]) == (team[0].pk, str(rule.pk))
    assert routed["ETag"] == f'"{routed.json()["version"]}"'
    event = OutboxEvent.objects.get(pk=routed.json()["event"])
    assert event.event_type == "TaskAssigned"
    assert event.payload["routing"]["rule"] == str(rule.pk)
    WorkerProfile.objects.create(user=team[0], away=True)
    other = make_task(assignee=None)
    failed = agent_api.post(f"/api/workflow/tasks/{other.pk}/route").json()
    assert failed["assigned"] is False
    assert OutboxEvent.objects.get(pk=failed["event"]).event_type == "TaskRoutingFailed"
    assert_envelope(client_api.post(url), 403, "PERMISSION_DENIED")
    assert_envelope(other_agent_api.post(url), 404, "NOT_FOUND")


def test_workload(
    supervisor_api, admin_api, agent_api, client_api, other_supervisor_api, team, make_task, agency
):
    a = team[0]
    make_task(assignee=a, priority="high", due_at="2020-01-01T00:00:00Z")
    make_task(assignee=a)
    make_task(assignee=None, service_area="benefits")
    WorkerProfile.objects.create(user=a, away=True, delegate=team[1])
    body = supervisor_api.get("/api/workflow/workload").json()
    row = next(w for w in body["workers"] if w["user"] == a.pk)
    assert {k: row[k] for k in ("open", "weighted_load", "overdue", "at_risk", "away", "delegate")} == {
        "open": 2,
        "weighted_load": 5,
        "overdue": 1,
        "at_risk": 0,
        "away": True,
        "delegate": team[1].pk,
    }
    assert row["oldest_open_age_seconds"] >= 0
    assert body["unassigned"]["total"] == 1
    assert body["unassigned"]["under_1h"] == 1
    areas = {area["service_area"]: area for area in body["service_areas"]}
    assert (areas["housing"]["open"], areas["benefits"]["unassigned"]) == (2, 1)
    assert agent_api.get("/api/workflow/workload").status_code == 200
    as_admin = admin_api.get(f"/api/workflow/workload?agency={agency.pk}").json()
    assert as_admin["workers"] == body["workers"]
    assert_envelope(admin_api.get("/api/workflow/workload"), 400, "VALIDATION_ERROR")
    assert_envelope(client_api.get("/api/workflow/workload"), 403, "PERMISSION_DENIED")
    other = other_supervisor_api.get("/api/workflow/workload").json()
    assert {w["user"] for w in other["workers"]}.isdisjoint({w.pk for w in team})
    assert_envelope(other_supervisor_api.get(f"/api/workflow/workload?agency={agency.pk}"), 404, "NOT_FOUND")


def test_the_admin_workload_page_links_every_figure(admin_user, team, make_task, agency, client):
    make_task(assignee=team[0])
    AgentFactory(agency=agency, username="zed")
    client.force_login(admin_user)
    page = client.get(f"/admin/routing/workerload/workload/?agency={agency.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"assignee__id__exact={team[0].pk}" in html
    assert "state__in=new%2Cin_progress%2Cblocked" in html
    assert "assignee__isnull=True" in html
    links = [
        part.split('"')[0].replace("&amp;", "&") for part in html.split('href="/admin/workflow/task/?')[1:]
    ]
    link = next(link for link in links if f"assignee__id__exact={team[0].pk}" in link)
    listed = client.get(f"/admin/workflow/task/?{link}")
    # 200, not the changelist's 302 to ?e=1 for a lookup it refuses; the worker's one open task listed.
    assert listed.status_code == 200
    assert listed.context["cl"].result_count == 1
    # Every figure's list opens (the overdue and at-risk figures use the changelist's own filters, the
    # API's rules), none bounced to the changelist's error page.
    assert any("sla_status=at_risk" in link for link in links)
    assert any("overdue=yes" in link for link in links)
    for each in links:
        assert client.get(f"/admin/workflow/task/?{each}").status_code == 200, each
