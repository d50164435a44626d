"""POST /tasks/{id}/transition: the success shape and every error code it can answer with."""

from unittest import mock

import pytest

from outbox.models import OutboxEvent
from tests.support.api import assert_envelope
from workflow.models import Task
from workflow.selectors import task_get
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


def transition_url(task) -> str:
    return f"/api/workflow/tasks/{task.pk}/transition"


def test_success_returns_task_and_event(agent_api, agent, make_task):
    task = make_task()
    response = agent_api.post(
        transition_url(task), {"target_state": "in_progress", "reason": "go"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["success"] is True
    assert body["task"]["state"] == "in_progress"
    # blocked is missing: its guard needs a blocked_reason, which the task does not have yet
    assert sorted(body["task"]["available_transitions"]) == ["cancelled", "completed"]
    assert body["event"]["event_type"] == "TaskStateChanged"
    assert body["event"]["sequence"] == 2
    assert body["event"]["actor"] == agent.pk
    assert body["event"]["payload"]["reason"] == "go"
    assert Task.objects.get(pk=task.pk).state == "in_progress"


def test_trailing_slash_works(agent_api, make_task):
    task = make_task()
    response = agent_api.post(f"{transition_url(task)}/", {"target_state": "in_progress"}, format="json")
    assert response.status_code == 200


def test_pair_not_in_graph_is_invalid_transition(agent_api, agent, make_task):
    task = make_task()
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    task_transition(task_id=task.pk, target_state="completed", actor=agent)
    body = assert_envelope(
        agent_api.post(transition_url(task), {"target_state": "in_progress"}, format="json"),
        400,
        "INVALID_TRANSITION",
    )
    assert body["message"] == "Transition from completed to in_progress not allowed"
    assert body["details"]["from_state"] == "completed"


def test_refusing_guard_is_named(agent_api, make_task):
    task = make_task(assignee=None)
    body = assert_envelope(
        agent_api.post(transition_url(task), {"target_state": "in_progress"}, format="json"),
        400,
        "GUARD_FAILED",
    )
    assert body["details"]["guards"] == ["has_assignee"]
    assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == 1


def test_block_needs_a_reason(agent_api, make_task):
    task = make_task()
    body = assert_envelope(
        agent_api.post(transition_url(task), {"target_state": "blocked"}, format="json"), 400, "GUARD_FAILED"
    )
    assert body["details"]["guards"] == ["has_blocked_reason"]
    response = agent_api.post(
        transition_url(task), {"target_state": "blocked", "reason": "waiting"}, format="json"
    )
    assert response.json()["task"]["blocked_reason"] == "waiting"


def test_unknown_target_state_is_validation_error(agent_api, make_task):
    body = assert_envelope(
        agent_api.post(transition_url(make_task()), {"target_state": "teleported"}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert "target_state" in body["details"]


def test_client_may_cancel_its_new_task_but_not_start_it(client_api, make_task):
    task = make_task()
    assert_envelope(
        client_api.post(transition_url(task), {"target_state": "in_progress"}, format="json"),
        403,
        "PERMISSION_DENIED",
    )
    response = client_api.post(transition_url(task), {"target_state": "cancelled"}, format="json")
    assert response.status_code == 200
    assert response.json()["task"]["available_transitions"] == []


def test_out_of_scope_task_is_404(other_agent_api, make_task):
    assert_envelope(
        other_agent_api.post(transition_url(make_task()), {"target_state": "cancelled"}, format="json"),
        404,
        "NOT_FOUND",
    )


def test_lost_race_is_409_concurrent_modification(agent_api, agent, make_task):
    task = make_task()
    stale = task_get(user=agent, task_id=task.pk)  # read before someone else moves it
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    with mock.patch("workflow.services.tasks.task_get", return_value=stale):
        body = assert_envelope(
            agent_api.post(transition_url(task), {"target_state": "blocked", "reason": "r"}, format="json"),
            409,
            "CONCURRENT_MODIFICATION",
        )
    assert body["message"]
    assert Task.objects.get(pk=task.pk).state == "in_progress"
