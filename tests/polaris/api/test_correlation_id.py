"""X-Correlation-ID: taken from the request (or generated), echoed, and stored on the events it causes."""

import pytest

from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db


def test_given_id_is_echoed_and_stored_on_every_event(agent_api, client_user, agent):
    created = agent_api.post(
        "/api/workflow/tasks",
        {"title": "Intake", "task_type": "intake", "client": client_user.pk, "assignee": agent.pk},
        format="json",
        HTTP_X_CORRELATION_ID="req-create-1",
    )
    assert created["X-Correlation-ID"] == "req-create-1"
    task_id = created.json()["id"]
    moved = agent_api.post(
        f"/api/workflow/tasks/{task_id}/transition",
        {"target_state": "in_progress"},
        format="json",
        HTTP_X_CORRELATION_ID="req-move-2",
    )
    assert moved["X-Correlation-ID"] == "req-move-2"
    assert moved.json()["event"]["correlation_id"] == "req-move-2"
    stored = dict(
        OutboxEvent.objects.filter(aggregate_id=task_id).values_list("event_type", "correlation_id")
    )
    assert stored == {"TaskCreated": "req-create-1", "TaskStateChanged": "req-move-2"}
    history = agent_api.get(f"/api/workflow/tasks/{task_id}/events").json()["results"]
    assert [event["correlation_id"] for event in history] == ["req-create-1", "req-move-2"]


def test_missing_id_is_generated_and_stored(agent_api, make_task):
    task = make_task()
    response = agent_api.post(
        f"/api/workflow/tasks/{task.pk}/transition", {"target_state": "cancelled"}, format="json"
    )
    generated = response["X-Correlation-ID"]
    assert generated
    assert response.json()["event"]["correlation_id"] == generated
    assert OutboxEvent.objects.get(aggregate_id=task.pk, sequence=2).correlation_id == generated


def test_errors_carry_the_id_too(agent_api):
    response = agent_api.get("/api/workflow/tasks/nope", HTTP_X_CORRELATION_ID="req-404")
    assert response.status_code == 404
    assert response["X-Correlation-ID"] == "req-404"
