"""Idempotency-Key on the state-changing endpoints beyond creates: transitions, edits (PATCH task and plan,
assign), plan activate/archive, alert acknowledge, dead-letter replay. A repeat replays the first response
and changes nothing again; the key with another body is 409 IDEMPOTENCY_KEY_REUSED."""

import uuid

import pytest

from automation.alerts import alert_raise
from outbox.models import OutboxEvent
from polaris.idempotency.models import IdempotencyKey
from tests.support.api import assert_envelope

pytestmark = pytest.mark.django_db

TASKS = "/api/workflow/tasks"
PLANS = "/api/workflow/action-plans"


def events_of(aggregate_id) -> list[str]:
    return list(OutboxEvent.objects.filter(aggregate_id=aggregate_id).values_list("event_type", flat=True))


def test_a_retried_transition_replays_its_first_response_and_writes_one_event(agent_api, make_task):
    task = make_task()
    url = f"{TASKS}/{task.pk}/transition"
    first = agent_api.post(url, {"target_state": "in_progress"}, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
    assert first.status_code == 200, first.content
    again = agent_api.post(url, {"target_state": "in_progress"}, format="json", HTTP_IDEMPOTENCY_KEY="t-1")
    assert again.status_code == 200  # not 400 INVALID_TRANSITION: the move already happened, once
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert events_of(task.pk) == ["TaskCreated", "TaskStateChanged"]


def test_without_a_key_a_repeated_transition_is_refused(agent_api, make_task):
    task = make_task()
    url = f"{TASKS}/{task.pk}/transition"
    assert agent_api.post(url, {"target_state": "in_progress"}, format="json").status_code == 200
    assert_envelope(
        agent_api.post(url, {"target_state": "in_progress"}, format="json"), 400, "INVALID_TRANSITION"
    )


def test_one_key_with_another_target_is_409_and_moves_nothing(agent_api, make_task):
    task = make_task()
    url = f"{TASKS}/{task.pk}/transition"
    agent_api.post(url, {"target_state": "in_progress"}, format="json", HTTP_IDEMPOTENCY_KEY="t-2")
    response = agent_api.post(url, {"target_state": "blocked"}, format="json", HTTP_IDEMPOTENCY_KEY="t-2")
    assert_envelope(response, 409, "IDEMPOTENCY_KEY_REUSED")
    task.refresh_from_db()
    assert task.state == "in_progress"


def test_one_key_on_two_tasks_moves_both(agent_api, make_task):
    first, second = make_task(), make_task()
    for task in (first, second):
        response = agent_api.post(
            f"{TASKS}/{task.pk}/transition",
            {"target_state": "in_progress"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k",
        )
        assert response.status_code == 200
        assert "Idempotent-Replayed" not in response
    assert IdempotencyKey.objects.filter(key="k").count() == 2


def test_a_failed_transition_stores_no_key_and_may_be_retried(agent_api, make_task):
    task = make_task()
    url = f"{TASKS}/{task.pk}/transition"
    refused = agent_api.post(url, {"target_state": "done"}, format="json", HTTP_IDEMPOTENCY_KEY="t-3")
    assert refused.status_code == 400
    assert not IdempotencyKey.objects.filter(key="t-3").exists()
    moved = agent_api.post(url, {"target_state": "in_progress"}, format="json", HTTP_IDEMPOTENCY_KEY="t-3")
    assert moved.status_code == 200


def test_plan_activate_and_archive_replay(agent_api, make_plan, make_task):
    plan = make_plan()
    make_task(action_plan=plan)
    activate = f"{PLANS}/{plan.pk}/activate"
    first = agent_api.post(activate, {}, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert first.status_code == 200, first.content
    again = agent_api.post(activate, {}, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert (again.status_code, again.json()) == (200, first.json())
    assert events_of(plan.pk).count("ActionPlanActivated") == 1

    other = make_plan()
    archive = f"{PLANS}/{other.pk}/archive"
    first = agent_api.post(archive, {}, format="json", HTTP_IDEMPOTENCY_KEY="p-1")  # same key, other endpoint
    assert first.status_code == 200, first.content
    again = agent_api.post(archive, {}, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (200, first.json(), "true")
    assert events_of(other.pk).count("ActionPlanArchived") == 1


def test_acknowledge_replays_the_first_acknowledgement(agent_api, make_task):
    task = make_task()
    alert = alert_raise(
        severity="info", message="ours", event=OutboxEvent.objects.filter(aggregate_id=task.pk).first()
    )
    url = f"/api/workflow/alerts/{alert.pk}/acknowledge"
    first = agent_api.post(url, HTTP_IDEMPOTENCY_KEY="a-1")
    assert first.status_code == 200
    again = agent_api.post(url, HTTP_IDEMPOTENCY_KEY="a-1")
    assert (again.json(), again["Idempotent-Replayed"]) == (first.json(), "true")


def test_replay_of_a_dead_event_replays_its_response_not_the_replay(admin_api):
    event = OutboxEvent.objects.create(
        event_type="DispatchProbed",
        aggregate_type="probe",
        aggregate_id=uuid.uuid4(),
        sequence=1,
        status=OutboxEvent.Status.DEAD,
        attempts=10,
        last_error="boom",
    )
    url = f"/api/workflow/events/{event.pk}/replay"
    first = admin_api.post(url, HTTP_IDEMPOTENCY_KEY="r-1")
    assert first.status_code == 200, first.content
    # Without the key a second replay is 409 (the event is no longer dead); with it, the first answer.
    assert_envelope(admin_api.post(url), 409, "CONFLICT")
    again = admin_api.post(url, HTTP_IDEMPOTENCY_KEY="r-1")
    assert (again.status_code, again.json()) == (200, first.json())


@pytest.mark.parametrize(
    ("path", "method", "first_body", "other_body", "event_type"),
    [
        ("{task}", "patch", {"priority": "high"}, {"priority": "low"}, "TaskUpdated"),
        ("{task}/assign", "post", {"assignee": "{agent}"}, {"assignee": None}, "TaskAssigned"),
        ("{plan}", "patch", {"title": "Housing, revised"}, {"title": "Something else"}, "ActionPlanUpdated"),
    ],
    ids=["patch-task", "assign", "patch-plan"],
)
def test_edits_replay_their_first_response_and_refuse_the_key_with_another_body(
    agent_api, agent, make_task, make_plan, path, method, first_body, other_body, event_type
):
    task, plan = make_task(assignee=None), make_plan()
    url = path.format(task=f"{TASKS}/{task.pk}", plan=f"{PLANS}/{plan.pk}")
    aggregate = plan if path.startswith("{plan}") else task
    first_body = {name: agent.pk if value == "{agent}" else value for name, value in first_body.items()}
    send = getattr(agent_api, method)

    first = send(url, first_body, format="json", HTTP_IDEMPOTENCY_KEY="e-1")
    assert first.status_code == 200, first.content
    again = send(url, first_body, format="json", HTTP_IDEMPOTENCY_KEY="e-1")
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (200, first.json(), "true")
    assert events_of(aggregate.pk).count(event_type) == 1

    reused = send(url, other_body, format="json", HTTP_IDEMPOTENCY_KEY="e-1")
    assert_envelope(reused, 409, "IDEMPOTENCY_KEY_REUSED")
    assert events_of(aggregate.pk).count(event_type) == 1
    aggregate.refresh_from_db()
    assert aggregate.version == first.json()["version"]  # nothing moved since the first response
