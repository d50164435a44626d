"""Automation API: triggers (admins), dry-run (admins, writes nothing), alerts (scoped) and acknowledge."""

import pytest
from rest_framework.test import APIClient

from automation.alerts import alert_raise
from automation.engine import automation_handle_event
from automation.models import Alert, TriggerExecution
from automation.services import trigger_create
from outbox.models import OutboxEvent
from tests.automation.conftest import latest_event
from workflow.models import Task
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def intake_trigger():
    return trigger_create(
        name="intake done",
        event_type="TaskStateChanged",
        predicate='task_type == "intake" and new_state == "completed"',
        actions=[{"type": "create_task", "params": {"task_type": "assessment", "title": "Assess $title"}}],
    )


@pytest.mark.parametrize("path", ["/api/workflow/triggers", "/api/workflow/triggers/"])
def test_admins_list_triggers_in_position_order(admin_user, intake_trigger, path):
    trigger_create(name="early", event_type="TaskCreated", position=1)
    response = client_for(admin_user).get(path)
    assert response.status_code == 200
    assert [t["name"] for t in response.data["results"]] == ["early", "intake done"]
    assert response.data["results"][1]["actions"][0]["type"] == "create_task"


@pytest.mark.parametrize("persona", ["agent", "client_user"])
def test_non_admins_may_not_list_triggers(request, persona):
    response = client_for(request.getfixturevalue(persona)).get("/api/workflow/triggers")
    assert response.status_code == 403
    assert response.data["error_code"] == "PERMISSION_DENIED"


def test_anonymous_requests_are_refused():
    assert APIClient().get("/api/workflow/triggers").status_code == 401


def test_dry_run_against_a_stored_event_explains_and_writes_nothing(
    admin_user, intake_trigger, make_task, agent
):
    task = make_task(title="Intake")
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    started = latest_event(task)
    task_transition(task_id=task.pk, target_state="completed", actor=agent)
    completed = latest_event(task)
    counts = Task.objects.count(), OutboxEvent.objects.count(), TriggerExecution.objects.count()
    api = client_for(admin_user)

    miss = api.post(
        f"/api/workflow/triggers/{intake_trigger.pk}/dry-run", {"event_id": str(started.id)}, format="json"
    )
    assert miss.status_code == 200
    assert miss.data["matched"] is False
    assert miss.data["failed_clause"] == 'new_state == "completed"'
    assert miss.data["actions"] == []

    hit = api.post(
        f"/api/workflow/triggers/{intake_trigger.pk}/dry-run/", {"event_id": str(completed.id)}, format="json"
    )
    assert hit.data["matched"] is True
    assert hit.data["failed_clause"] is None
    assert hit.data["actions"] == [
        {"type": "create_task", "params": {"task_type": "assessment", "title": "Assess Intake"}}
    ]
    assert (Task.objects.count(), OutboxEvent.objects.count(), TriggerExecution.objects.count()) == counts


def test_dry_run_against_an_event_body(admin_user, intake_trigger):
    body = {
        "event": {
            "event_type": "TaskStateChanged",
            "payload": {"task_type": "intake", "new_state": "blocked"},
        }
    }
    response = client_for(admin_user).post(
        f"/api/workflow/triggers/{intake_trigger.pk}/dry-run", body, format="json"
    )
    assert response.status_code == 200
    assert response.data["failed_clause"] == 'new_state == "completed"'
    assert [c["result"] for c in response.data["clauses"]] == [True, False]

    deep = {
        "event": {
            "event_type": "TaskStateChanged",
            "depth": 9,
            "payload": {"task_type": "intake", "new_state": "completed"},
        }
    }
    response = client_for(admin_user).post(
        f"/api/workflow/triggers/{intake_trigger.pk}/dry-run", deep, format="json"
    )
    assert response.data["matched"] is True
    assert response.data["loop_prevented"] is True

    other_type = {"event": {"event_type": "TaskCreated", "payload": {}}}
    response = client_for(admin_user).post(
        f"/api/workflow/triggers/{intake_trigger.pk}/dry-run", other_type, format="json"
    )
    assert response.data["event_type_matches"] is False
    assert response.data["failed_clause"] == "event_type == 'TaskStateChanged'"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "VALIDATION_ERROR"),
        ({"event_id": "00000000-0000-0000-0000-000000000000"}, 404, "NOT_FOUND"),
        ({"event": {"payload": {}}}, 400, "VALIDATION_ERROR"),
        ({"event": "TaskCreated"}, 400, "VALIDATION_ERROR"),
    ],
)
def test_dry_run_input_errors(admin_user, intake_trigger, body, status, code):
    response = client_for(admin_user).post(
        f"/api/workflow/triggers/{intake_trigger.pk}/dry-run", body, format="json"
    )
    assert response.status_code == status
    assert response.data["error_code"] == code


def test_dry_run_is_for_admins_and_existing_triggers(admin_user, agent, intake_trigger):
    body = {"event": {"event_type": "TaskCreated"}}
    assert (
        client_for(agent)
        .post(f"/api/workflow/triggers/{intake_trigger.pk}/dry-run", body, format="json")
        .status_code
        == 403
    )
    assert (
        client_for(admin_user).post("/api/workflow/triggers/999999/dry-run", body, format="json").status_code
        == 404
    )


def test_dry_run_applies_the_agency_scope_as_the_engine_does(
    admin_user, make_task, other_agency, other_client, other_agent
):
    scoped = trigger_create(
        name="other agency only",
        event_type="TaskCreated",
        actions=[{"type": "emit_alert", "params": {"message": "hello"}}],
        agency_id=other_agency.pk,
    )
    url = f"/api/workflow/triggers/{scoped.pk}/dry-run"
    api = client_for(admin_user)
    ours = latest_event(make_task())
    theirs = latest_event(
        make_task(agency=other_agency, client=other_client, actor=other_agent, assignee=other_agent)
    )

    miss = api.post(url, {"event_id": str(ours.id)}, format="json").data
    assert (miss["matched"], miss["agency_matches"]) == (False, False)
    assert miss["failed_clause"] == f"payload['agency_id'] == '{other_agency.pk}'"
    assert miss["actions"] == []
    hit = api.post(url, {"event_id": str(theirs.id)}, format="json").data
    assert (hit["matched"], hit["agency_matches"]) == (True, True)
    assert hit["actions"] == [{"type": "emit_alert", "params": {"message": "hello"}}]

    # The engine agrees, event for event: our agency's event is skipped, theirs fires.
    automation_handle_event(ours)
    assert not Alert.objects.exists()
    automation_handle_event(theirs)
    assert Alert.objects.count() == 1

    body = {"event_type": "TaskCreated", "payload": {"agency_id": str(other_agency.pk)}}
    assert api.post(url, {"event": body}, format="json").data["matched"] is True
    unscoped_body = {"event": {"event_type": "TaskCreated", "payload": {}}}
    assert api.post(url, unscoped_body, format="json").data["agency_matches"] is False


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"event": {"event_type": "TaskCreated"}, "evnt_id": "x"}, {"evnt_id": ["Unknown field."]}),
        ({"event_id": 7}, {"event_id": ["Must be a string."]}),
    ],
)
def test_dry_run_refuses_unknown_fields_and_wrong_types(admin_user, intake_trigger, body, details):
    response = client_for(admin_user).post(
        f"/api/workflow/triggers/{intake_trigger.pk}/dry-run", body, format="json"
    )
    assert response.status_code == 400
    assert response.data["error_code"] == "VALIDATION_ERROR"
    assert response.data["details"] == details


@pytest.fixture
def alerts(make_task, make_plan, other_agent, other_client, other_agency):
    mine = alert_raise(severity="info", message="ours", event=latest_event(make_task()))
    theirs_task = make_task(actor=other_agent, client=other_client, agency=other_agency, assignee=other_agent)
    theirs = alert_raise(severity="warning", message="theirs", event=latest_event(theirs_task))
    global_alert = alert_raise(severity="critical", message="global")
    return mine, theirs, global_alert


def test_admins_see_every_alert_agents_their_agency_clients_none(admin_user, agent, client_user, alerts):
    mine, _, _ = alerts
    admin_view = client_for(admin_user).get("/api/workflow/alerts")
    assert {a["message"] for a in admin_view.data["results"]} == {"ours", "theirs", "global"}
    agent_view = client_for(agent).get("/api/workflow/alerts/")
    assert [a["message"] for a in agent_view.data["results"]] == ["ours"]
    assert agent_view.data["results"][0]["agency_id"] == str(mine.agency_id)
    client_view = client_for(client_user).get("/api/workflow/alerts")
    assert client_view.status_code == 403


def test_acknowledge_is_scoped_and_idempotent(admin_user, agent, other_agent, alerts):
    mine, theirs, _ = alerts
    response = client_for(agent).post(f"/api/workflow/alerts/{mine.pk}/acknowledge")
    assert response.status_code == 200
    assert response.data["acknowledged_by"] == agent.username
    first = response.data["acknowledged_at"]
    again = client_for(admin_user).post(f"/api/workflow/alerts/{mine.pk}/acknowledge/")
    assert (again.data["acknowledged_at"], again.data["acknowledged_by"]) == (first, agent.username)
    assert client_for(agent).post(f"/api/workflow/alerts/{theirs.pk}/acknowledge").status_code == 404
    assert Alert.objects.get(pk=theirs.pk).acknowledged_at is None
