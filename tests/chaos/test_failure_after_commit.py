"""Chaos: the database connection dies right after the commit. The client is told what happened (2xx with the
committed state), never "failed" for a change that was made: every response is read inside its transaction."""

import contextlib

import pytest
from django.db import DatabaseError, close_old_connections, connection, transaction
from django_fsm.signals import post_transition

from outbox.models import OutboxEvent
from polaris.idempotency.models import IdempotencyKey
from workflow.models import Task

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


def terminate_own_backend() -> None:
    """PostgreSQL ends this connection (as a crash or an admin would): every later query on it fails."""
    with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")


@pytest.fixture
def database_dies_after_commit():
    def arm(**kwargs):
        transaction.on_commit(terminate_own_backend)

    post_transition.connect(arm, dispatch_uid="chaos-after-commit")
    yield
    post_transition.disconnect(dispatch_uid="chaos-after-commit")
    close_old_connections()  # as a real server does at the end of the request (the test client does not)


@pytest.mark.parametrize("key", [None, "after-commit-1"])
def test_a_transition_whose_connection_dies_after_commit_answers_200_with_the_committed_state(
    agent_api, make_task, database_dies_after_commit, key
):
    task = make_task()
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    response = agent_api.post(
        f"/api/workflow/tasks/{task.pk}/transition", {"target_state": "in_progress"}, format="json", **headers
    )
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["task"]["state"] == "in_progress"
    assert body["event"]["event_type"] == "TaskStateChanged"
    assert "sla" in body["task"]  # the SLA block (read through the extension hook) is there too

    close_old_connections()
    task.refresh_from_db()
    assert task.state == "in_progress"
    assert OutboxEvent.objects.filter(pk=body["event"]["id"]).exists()
    assert IdempotencyKey.objects.filter(key=key).exists() is bool(key)


def test_a_plan_activation_whose_connection_dies_after_commit_answers_200(
    agent_api, make_plan, make_task, database_dies_after_commit
):
    plan = make_plan()
    make_task(action_plan=plan)
    response = agent_api.post(f"/api/workflow/action-plans/{plan.pk}/activate", {}, format="json")
    assert response.status_code == 200, response.content[:500]
    assert response.json()["action_plan"]["state"] == "active"
    close_old_connections()
    plan.refresh_from_db()
    assert plan.state == "active"


def test_the_task_still_exists_when_asked_after_the_failure(agent_api, make_task, database_dies_after_commit):
    task = make_task()
    agent_api.post(
        f"/api/workflow/tasks/{task.pk}/transition", {"target_state": "in_progress"}, format="json"
    )
    close_old_connections()
    assert Task.objects.get(pk=task.pk).state == "in_progress"
