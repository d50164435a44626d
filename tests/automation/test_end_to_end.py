"""End to end with a real Celery worker: the after-commit kick, the dispatcher, the automation handler
and the webhook delivery task, against the test database and Redis."""

import pytest
from django.utils import timezone

from automation.models import Alert, TriggerExecution, WebhookDelivery, WebhookEndpoint
from automation.services import trigger_create
from outbox.models import HandledEvent, OutboxEvent
from outbox.tasks import outbox_dispatch_task
from polaris.celery import app as celery_app
from tests.automation.conftest import latest_event
from tests.automation.test_webhooks import SECRET, Receiver, verify
from tests.support.processes import celery_process, process_env, wait_until
from workflow.models import Task
from workflow.services.action_plans import action_plan_activate
from workflow.services.tasks import task_transition

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def automation_worker(settings):
    settings.OUTBOX_KICK_ON_COMMIT = True
    celery_app.control.purge()
    args = ["-P", "solo", "-n", "automation-e2e@%h", "--without-gossip", "--without-mingle"]
    env = process_env(
        WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        WEBHOOK_RETRY_SCHEDULE_SECONDS="0.2,0.2,0.2",
        WEBHOOK_TIMEOUT_SECONDS="3",
    )
    with celery_process("worker", *args, env=env) as process:
        yield process


def dispatched(event: OutboxEvent) -> bool:
    event.refresh_from_db()
    return event.status == OutboxEvent.Status.DISPATCHED


def redeliver(event: OutboxEvent) -> None:
    """What a lost lease looks like to the dispatcher: the event is due again."""
    OutboxEvent.objects.filter(pk=event.pk).update(
        status="pending", dispatched_at=None, next_attempt_at=timezone.now()
    )
    outbox_dispatch_task.delay()
    wait_until(lambda: dispatched(event), timeout=15)


def test_completed_intake_creates_exactly_one_assessment_even_when_dispatched_twice(
    builtin_triggers, automation_worker, make_task, agent
):
    intake = make_task(title="Intake for Cleo")
    task_transition(task_id=intake.pk, target_state="in_progress", actor=agent)
    task_transition(task_id=intake.pk, target_state="completed", actor=agent)
    completed = latest_event(intake)

    assessment = wait_until(lambda: Task.objects.filter(task_type="assessment").first(), timeout=20)
    wait_until(lambda: dispatched(completed), timeout=10)
    assert (assessment.priority, assessment.client_id, assessment.agency_id) == (
        "high",
        intake.client_id,
        intake.agency_id,
    )
    created = latest_event(assessment)
    assert (created.causation_id, created.depth) == (completed.id, 1)
    wait_until(lambda: dispatched(created), timeout=10)

    redeliver(completed)  # the ledger skips it
    HandledEvent.objects.filter(event=completed, handler="automation").delete()
    redeliver(completed)  # even without the ledger row, the (trigger, event) constraint holds

    assert Task.objects.filter(task_type="assessment").count() == 1
    assert TriggerExecution.objects.filter(event=completed).count() == 1
    assert HandledEvent.objects.filter(event=completed, handler="automation").count() == 1


def test_activating_a_plan_raises_the_alert(builtin_triggers, automation_worker, make_plan, make_task, agent):
    plan = make_plan(title="Stable housing")
    make_task(action_plan=plan, task_type="home-visit")
    action_plan_activate(action_plan_id=plan.pk, actor=agent)
    alert = wait_until(lambda: Alert.objects.filter(event__aggregate_id=plan.pk).first(), timeout=20)
    assert alert.message == "Action plan activated: Stable housing"
    assert alert.agency_id == plan.agency_id


def test_a_webhook_is_retried_by_the_worker_and_delivered_once(automation_worker, make_task):
    receiver = Receiver()
    receiver.thread.start()
    try:
        receiver.statuses.append(503)
        endpoint = WebhookEndpoint.objects.create(name="receiver", url=receiver.url, secret=SECRET)
        trigger_create(
            name="hook",
            event_type="TaskCreated",
            actions=[{"type": "webhook", "params": {"endpoint": endpoint.pk}}],
        )
        task = make_task()
        delivery = wait_until(
            lambda: WebhookDelivery.objects.filter(endpoint=endpoint, status="delivered").first(), timeout=20
        )
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert delivery.attempts == 2
    assert delivery.event == latest_event(task)
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [str(delivery.event_id)] * 2
    assert all(verify(request) for request in receiver.requests)
