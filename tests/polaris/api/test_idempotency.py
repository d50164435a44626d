"""Idempotency-Key on the create endpoints: replay, reuse with another body, expiry, concurrent duplicates."""

import threading
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from outbox.models import OutboxEvent
from polaris.idempotency.models import IdempotencyKey
from polaris.idempotency.services import idempotency_keys_purge
from tests.factories import AgencyFactory, AgentFactory, ClientFactory
from tests.support.api import assert_envelope, bearer_client
from workflow.models import ActionPlan, Task
from workflow.services.tasks import task_create

TASKS = "/api/workflow/tasks"
PLANS = "/api/workflow/action-plans"


def task_body(client_user, **extra):
    return {"title": "Intake", "task_type": "intake", "client": client_user.pk, **extra}


@pytest.mark.django_db
def test_repeat_returns_the_first_response_and_creates_nothing(agent_api, client_user):
    first = agent_api.post(TASKS, task_body(client_user), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    again = agent_api.post(TASKS, task_body(client_user), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Task.objects.count() == 1
    assert OutboxEvent.objects.filter(event_type="TaskCreated").count() == 1


@pytest.mark.django_db
def test_key_order_and_spacing_do_not_matter(agent_api, client_user):
    body = task_body(client_user)
    agent_api.post(TASKS, body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    reordered = dict(reversed(list(body.items())))
    assert agent_api.post(TASKS, reordered, format="json", HTTP_IDEMPOTENCY_KEY="k-2").status_code == 201
    assert Task.objects.count() == 1


@pytest.mark.django_db
def test_same_key_with_a_different_body_is_409(agent_api, client_user):
    agent_api.post(TASKS, task_body(client_user), format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    response = agent_api.post(
        TASKS, task_body(client_user, title="Other"), format="json", HTTP_IDEMPOTENCY_KEY="k-3"
    )
    assert_envelope(response, 409, "IDEMPOTENCY_KEY_REUSED")
    assert Task.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_per_user_and_per_endpoint(agent_api, admin_api, client_user, agency):
    assert (
        agent_api.post(TASKS, task_body(client_user), format="json", HTTP_IDEMPOTENCY_KEY="k").status_code
        == 201
    )
    body = task_body(client_user, agency=str(agency.pk))
    assert admin_api.post(TASKS, body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    plan = {"title": "Plan", "client": client_user.pk}
    assert agent_api.post(PLANS, plan, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    assert Task.objects.count() == 2
    assert ActionPlan.objects.count() == 1


@pytest.mark.django_db
def test_failed_requests_are_not_remembered(agent_api, client_user):
    bad = agent_api.post(
        TASKS, {"title": "", "task_type": "intake"}, format="json", HTTP_IDEMPOTENCY_KEY="k-4"
    )
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.exists()
    # The client fixes its request and retries with the same key: 201, not 409.
    assert (
        agent_api.post(TASKS, task_body(client_user), format="json", HTTP_IDEMPOTENCY_KEY="k-4").status_code
        == 201
    )


@pytest.mark.django_db
def test_records_expire_after_the_ttl(settings, agent, client_user):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    bearer_client(agent).post(TASKS, task_body(client_user), format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    with time_machine.travel(timezone.now() + timedelta(hours=23)):
        bearer_client(agent).post(TASKS, task_body(client_user), format="json", HTTP_IDEMPOTENCY_KEY="k-5")
        assert Task.objects.count() == 1
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        response = bearer_client(agent).post(
            TASKS, task_body(client_user), format="json", HTTP_IDEMPOTENCY_KEY="k-5"
        )
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response
        assert Task.objects.count() == 2
    with time_machine.travel(timezone.now() + timedelta(hours=50)):
        assert idempotency_keys_purge() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_create_exactly_one():
    agency = AgencyFactory(slug="race-agency")
    agent = AgentFactory(agency=agency)
    client_user = ClientFactory(agency=agency)
    body = task_body(client_user)
    # Every request creates its task before any of them records the key: all four race on the insert.
    created_all = threading.Barrier(4)
    results: list[tuple[int, dict]] = []

    def create_then_wait(**kwargs):
        task = task_create(**kwargs)
        created_all.wait(timeout=10)
        return task

    def post() -> None:
        try:
            response = bearer_client(agent).post(TASKS, body, format="json", HTTP_IDEMPOTENCY_KEY="race")
            results.append((response.status_code, response.json()))
        finally:
            connection.close()

    with mock.patch("workflow.api.tasks.task_create", side_effect=create_then_wait):
        threads = [threading.Thread(target=post) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert [status for status, _ in results] == [201] * 4
    assert len({body["id"] for _, body in results}) == 1
    assert Task.objects.count() == 1
    assert OutboxEvent.objects.filter(event_type="TaskCreated").count() == 1
    assert IdempotencyKey.objects.count() == 1
