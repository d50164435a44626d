"""Task endpoints: create, list (filters, ordering, pagination), detail, events — through HTTP."""

import uuid

import pytest

from polaris.accounts.models import ClientAgencyLink
from tests.factories import AgentFactory, ClientFactory
from tests.support.api import assert_envelope
from workflow.models import Task
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db

TASKS = "/api/workflow/tasks"
TASK_FIELDS = {
    "id",
    "title",
    "description",
    "task_type",
    "service_area",
    "priority",
    "state",
    "client",
    "agency",
    "assignee",
    "action_plan",
    "blocked_reason",
    "due_at",
    "created_by",
    "created_at",
    "updated_at",
    "available_transitions",
    "sla",
}


def test_agent_creates_a_task_for_its_agency(agent_api, agent, client_user, agency):
    response = agent_api.post(
        TASKS,
        {"title": "Home visit", "task_type": "home-visit", "client": client_user.pk, "assignee": agent.pk},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) >= TASK_FIELDS
    assert body["state"] == "new"
    assert body["priority"] == "normal"
    assert body["agency"] == str(agency.pk)
    assert body["client"] == client_user.pk
    assert body["created_by"] == agent.pk
    assert sorted(body["available_transitions"]) == ["cancelled", "in_progress"]
    assert Task.objects.get(pk=body["id"]).created_by == agent


def test_admin_must_name_an_agency_when_the_client_has_no_link(admin_api):
    lone_client = ClientFactory(agency=None)
    response = admin_api.post(
        TASKS, {"title": "T", "task_type": "intake", "client": lone_client.pk}, format="json"
    )
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "agency" in body["details"]


def test_admin_creates_with_explicit_agency(admin_api, client_user, agency):
    response = admin_api.post(
        f"{TASKS}/",
        {
            "title": "T",
            "task_type": "intake",
            "client": client_user.pk,
            "agency": str(agency.pk),
            "priority": "high",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["priority"] == "high"


def test_client_creates_an_intake_task_for_itself(client_api, client_user, agency):
    response = client_api.post(TASKS, {"title": "I need housing", "task_type": "intake"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["client"] == client_user.pk
    assert body["agency"] == str(agency.pk)
    assert body["available_transitions"] == ["cancelled"]


def test_client_may_not_create_other_task_types(client_api):
    response = client_api.post(TASKS, {"title": "Visit", "task_type": "home-visit"}, format="json")
    assert_envelope(response, 403, "PERMISSION_DENIED")


def test_create_validation_errors_name_the_fields(agent_api):
    response = agent_api.post(
        TASKS, {"title": "", "task_type": "Not A Slug!", "priority": "meh", "client": "x"}, format="json"
    )
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert {"title", "task_type", "priority", "client"} <= set(body["details"])


def test_create_refers_only_to_users_in_scope(agent_api, other_client):
    response = agent_api.post(
        TASKS, {"title": "T", "task_type": "intake", "client": other_client.pk}, format="json"
    )
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "client" in body["details"]


def test_agent_may_not_create_for_another_agency(agent_api, agency, other_agency):
    shared_client = ClientFactory(agency=agency)  # served by both agencies
    ClientAgencyLink.objects.create(client=shared_client, agency=other_agency)
    response = agent_api.post(
        TASKS,
        {"title": "T", "task_type": "intake", "client": shared_client.pk, "agency": str(other_agency.pk)},
        format="json",
    )
    assert_envelope(response, 403, "PERMISSION_DENIED")


def test_detail_and_trailing_slash(agent_api, make_task):
    task = make_task()
    for path in (f"{TASKS}/{task.pk}", f"{TASKS}/{task.pk}/"):
        response = agent_api.get(path)
        assert response.status_code == 200
        assert response.json()["id"] == str(task.pk)


def test_detail_of_absent_or_malformed_id_is_404(agent_api):
    assert_envelope(agent_api.get(f"{TASKS}/{uuid.uuid4()}"), 404, "NOT_FOUND")
    assert_envelope(agent_api.get(f"{TASKS}/not-a-uuid"), 404, "NOT_FOUND")


def test_list_is_scoped_paginated_and_stably_ordered(agent_api, other_agent_api, make_task):
    tasks = [make_task(title=f"Task {i}") for i in range(5)]
    response = agent_api.get(TASKS, {"page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["next"]
    seen = [item["id"] for item in body["results"]]
    for page in (2, 3):
        seen += [
            item["id"] for item in agent_api.get(TASKS, {"page_size": 2, "page": page}).json()["results"]
        ]
    assert sorted(seen) == sorted(str(task.pk) for task in tasks)
    assert len(set(seen)) == 5
    assert other_agent_api.get(TASKS).json()["count"] == 0


def test_page_size_is_capped(agent_api, make_task):
    make_task()
    assert agent_api.get(TASKS, {"page_size": 10_000}).status_code == 200


def test_list_filters(agent_api, agent, make_task, make_plan, client_user):
    plan = make_plan()
    urgent = make_task(title="Urgent", priority="urgent", task_type="home-visit", service_area="health")
    planned = make_task(title="Planned", action_plan=plan, assignee=None)
    started = make_task(title="Started")
    task_transition(task_id=started.pk, target_state="in_progress", actor=agent)

    def ids(**params):
        response = agent_api.get(TASKS, params)
        assert response.status_code == 200, response.json()
        return {item["id"] for item in response.json()["results"]}

    assert ids(state="in_progress") == {str(started.pk)}
    assert ids(priority="urgent") == {str(urgent.pk)}
    assert ids(task_type="home-visit") == {str(urgent.pk)}
    assert ids(service_area="health") == {str(urgent.pk)}
    assert ids(action_plan=str(plan.pk)) == {str(planned.pk)}
    assert ids(assignee=agent.pk) == {str(urgent.pk), str(started.pk)}
    assert ids(client=client_user.pk) == {str(urgent.pk), str(planned.pk), str(started.pk)}
    assert ids(created_after="2000-01-01T00:00:00Z", created_before="2999-01-01T00:00:00Z") == ids()
    assert ids(created_before="2000-01-01T00:00:00Z") == set()
    ordered = agent_api.get(TASKS, {"ordering": "-priority"}).json()["results"]
    assert ordered[0]["id"] == str(urgent.pk)
    titles = [item["title"] for item in agent_api.get(TASKS, {"ordering": "title"}).json()["results"]]
    assert titles == sorted(titles)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "nope"}, "state"),
        ({"ordering": "password"}, "ordering"),
        ({"assignee": "abc"}, "assignee"),
        ({"assignee": "99999999999999999999999"}, "assignee"),
        ({"action_plan": "zzz"}, "action_plan"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"page": "0"}, "page"),
        ({"page": "x"}, "page"),
        ({"page_size": "-1"}, "page_size"),
        ({"stat": "new"}, "stat"),
        ({"task_type": "a\x00b"}, "task_type"),
    ],
)
def test_bad_query_params_are_400(agent_api, make_task, params, field):
    make_task()
    body = assert_envelope(agent_api.get(TASKS, params), 400, "VALIDATION_ERROR")
    assert field in body["details"]


def test_events_in_stream_order(agent_api, agent, make_task):
    task = make_task()
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    response = agent_api.get(f"{TASKS}/{task.pk}/events")
    assert response.status_code == 200
    events = response.json()["results"]
    assert [e["sequence"] for e in events] == [1, 2]
    assert [e["event_type"] for e in events] == ["TaskCreated", "TaskStateChanged"]
    assert set(events[0]) == {
        "id",
        "event_type",
        "sequence",
        "occurred_at",
        "actor",
        "correlation_id",
        "causation_id",
        "payload",
    }
    assert events[1]["actor"] == agent.pk
    assert events[1]["payload"]["new_state"] == "in_progress"


def test_events_of_out_of_scope_task_are_404(other_agent_api, make_task):
    assert_envelope(other_agent_api.get(f"{TASKS}/{make_task().pk}/events/"), 404, "NOT_FOUND")


@pytest.mark.parametrize("body", [{"assignee": "own_agent"}, {"priority": "urgent"}, {"priority": "normal"}])
def test_clients_may_not_choose_priority_or_assignee_at_creation(client_api, agency, body):
    own_agent = AgentFactory(agency=agency)
    body = {key: own_agent.pk if value == "own_agent" else value for key, value in body.items()}
    response = client_api.post(TASKS, {"title": "Intake", "task_type": "intake", **body}, format="json")
    assert_envelope(response, 403, "PERMISSION_DENIED")
    assert not Task.objects.exists()
