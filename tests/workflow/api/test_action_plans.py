"""Action plan endpoints: create, list, detail with its tasks, activate, archive."""

import pytest

from tests.support.api import assert_envelope
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db

PLANS = "/api/workflow/action-plans"


def test_agent_creates_a_draft_plan(agent_api, agent, client_user, agency):
    response = agent_api.post(PLANS, {"title": "Stable housing", "client": client_user.pk}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "draft"
    assert body["agency"] == str(agency.pk)
    assert body["created_by"] == agent.pk
    assert body["tasks"] == []
    assert body["available_transitions"] == ["archived"]  # has_tasks keeps it from activating


def test_client_may_not_create_plans(client_api, client_user):
    response = client_api.post(PLANS, {"title": "Mine", "client": client_user.pk}, format="json")
    assert_envelope(response, 403, "PERMISSION_DENIED")


def test_create_validation(agent_api):
    body = assert_envelope(agent_api.post(PLANS, {"title": ""}, format="json"), 400, "VALIDATION_ERROR")
    assert {"title", "client"} <= set(body["details"])


def test_detail_summarises_tasks(agent_api, make_plan, make_task):
    plan = make_plan()
    task = make_task(action_plan=plan)
    response = agent_api.get(f"{PLANS}/{plan.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["tasks"][0]["id"] == str(task.pk)
    assert body["tasks"][0]["state"] == "new"
    assert body["task_counts"]["new"] == 1
    assert sorted(body["available_transitions"]) == ["active", "archived"]


def test_list_filters_and_scope(agent_api, other_agent_api, client_api, make_plan, client_user):
    draft = make_plan(title="A")
    make_plan(title="B")
    assert agent_api.get(PLANS).json()["count"] == 2
    assert client_api.get(PLANS).json()["count"] == 2
    assert other_agent_api.get(PLANS).json()["count"] == 0
    assert agent_api.get(PLANS, {"state": "active"}).json()["count"] == 0
    assert agent_api.get(PLANS, {"client": client_user.pk}).json()["count"] == 2
    assert draft.pk
    assert_envelope(agent_api.get(PLANS, {"state": "bogus"}), 400, "VALIDATION_ERROR")


def test_activate_then_archive(agent_api, agent, make_plan, make_task):
    plan = make_plan()
    task = make_task(action_plan=plan)
    response = agent_api.post(f"{PLANS}/{plan.pk}/activate")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["success"] is True
    assert body["action_plan"]["state"] == "active"
    assert body["event"]["event_type"] == "ActionPlanActivated"
    # all_tasks_closed refuses while a task is open
    guard = assert_envelope(agent_api.post(f"{PLANS}/{plan.pk}/archive/"), 400, "GUARD_FAILED")
    assert guard["details"]["guards"] == ["all_tasks_closed"]
    task_transition(task_id=task.pk, target_state="cancelled", actor=agent)
    response = agent_api.post(f"{PLANS}/{plan.pk}/archive", {"reason": "done"}, format="json")
    assert response.status_code == 200
    assert response.json()["action_plan"]["state"] == "archived"
    assert response.json()["event"]["event_type"] == "ActionPlanArchived"


def test_activate_without_tasks_fails_its_guard(agent_api, make_plan):
    body = assert_envelope(agent_api.post(f"{PLANS}/{make_plan().pk}/activate"), 400, "GUARD_FAILED")
    assert body["details"]["guards"] == ["has_tasks"]


def test_activating_an_archived_plan_is_an_invalid_transition(agent_api, make_plan):
    plan = make_plan()
    assert agent_api.post(f"{PLANS}/{plan.pk}/archive").status_code == 200
    assert_envelope(agent_api.post(f"{PLANS}/{plan.pk}/activate"), 400, "INVALID_TRANSITION")


def test_client_may_read_but_not_activate(client_api, make_plan, make_task):
    plan = make_plan()
    make_task(action_plan=plan)
    assert client_api.get(f"{PLANS}/{plan.pk}/").status_code == 200
    assert_envelope(client_api.post(f"{PLANS}/{plan.pk}/activate"), 403, "PERMISSION_DENIED")
