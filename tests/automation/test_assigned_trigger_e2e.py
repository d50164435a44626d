"""A trigger on TaskAssigned fires end to end: the assign endpoint, a real Celery worker, the alert."""

import pytest

from automation.models import Alert
from automation.services import trigger_create
from outbox.models import OutboxEvent
from polaris.celery import app as celery_app
from tests.factories import AgentFactory
from tests.support.api import bearer_client
from tests.support.processes import celery_process, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(settings):
    settings.OUTBOX_KICK_ON_COMMIT = True
    settings.SECURE_SSL_REDIRECT = False
    celery_app.control.purge()
    args = ["-P", "solo", "-n", "assigned-e2e@%h", "--without-gossip", "--without-mingle"]
    with celery_process("worker", *args) as process:
        yield process


def test_assigning_a_task_raises_the_triggers_alert(worker, make_task, agent, agency):
    trigger_create(
        name="assigned",
        event_type="TaskAssigned",
        predicate='payload["new_assignee_id"] is not None and "assignee" in payload["changes"]',
        actions=[{"type": "emit_alert", "params": {"message": "Assigned: $title"}}],
    )
    task = make_task(assignee=None, title="Home visit")
    helper = AgentFactory(agency=agency)
    response = bearer_client(agent).post(
        f"/api/workflow/tasks/{task.pk}/assign", {"assignee": helper.pk}, format="json"
    )
    assert response.status_code == 200, response.content[:300]
    event = OutboxEvent.objects.get(aggregate_id=task.pk, event_type="TaskAssigned")
    alert = wait_until(lambda: Alert.objects.filter(event=event).first(), timeout=20)
    assert alert.message == "Assigned: Home visit"
    assert alert.agency_id == agency.pk
