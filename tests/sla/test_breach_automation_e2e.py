"""End to end: an SLA breach becomes an ``SLABreached`` event, the dispatcher hands it to automation, and a
trigger on that event type escalates (an alert and an escalation task). Coupled to automation only through
the event contract: event type, payload names, and the trigger/action vocabulary."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from automation.models import Alert, TriggerExecution
from automation.services import trigger_create
from outbox.dispatcher import outbox_dispatch
from outbox.models import OutboxEvent
from polaris.celery import app as celery_app
from sla.configs import sla_config_create
from sla.models import SLARecord
from sla.scan import sla_scan
from tests.sla.conftest import MONDAY_10
from tests.support.processes import wait_until
from workflow.models import Task

ESCALATE = [
    {
        "type": "emit_alert",
        "params": {"severity": "critical", "message": "SLA breached: $title (due $due_at)"},
    },
    {
        "type": "create_task",
        "params": {"task_type": "escalation", "title": "Escalation: $title", "priority": "urgent"},
    },
]


@pytest.fixture
def escalation_trigger(db):
    return trigger_create(
        name="Escalate breached intakes",
        event_type="SLABreached",
        predicate='task_type == "intake" and priority != "low"',
        actions=ESCALATE,
    )


def test_a_breach_triggers_the_escalation_rule(make_task, intake_config, escalation_trigger):
    with time_machine.travel(MONDAY_10, tick=False):
        task = make_task(title="Cleo's intake")
        ignored = make_task(title="Low priority intake", priority="low")
    assert sla_scan(now=MONDAY_10 + timedelta(hours=2)).breached == 2

    outbox_dispatch(budget_seconds=10, max_batches=20)

    breach = OutboxEvent.objects.get(event_type="SLABreached", payload__task_id=str(task.pk))
    execution = TriggerExecution.objects.get(trigger=escalation_trigger, event=breach)
    assert execution.outcome == "matched"
    alert = Alert.objects.get(event=breach)
    assert alert.severity == "critical"
    assert alert.message.startswith("SLA breached: Cleo's intake (due 2026-03-02T11:00:00")
    assert alert.agency_id == task.agency_id
    escalation = Task.objects.get(task_type="escalation")
    assert (escalation.title, escalation.priority, escalation.client_id) == (
        "Escalation: Cleo's intake",
        "urgent",
        task.client_id,
    )
    created = OutboxEvent.objects.get(aggregate_id=escalation.pk, sequence=1)
    assert (created.causation_id, created.depth) == (breach.id, 1)

    other = OutboxEvent.objects.get(event_type="SLABreached", payload__task_id=str(ignored.pk))
    assert not Alert.objects.filter(event=other).exists()  # the predicate refused the low-priority one
    assert Task.objects.filter(task_type="escalation").count() == 1


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_beat_scan_breach_escalates_through_a_real_worker(settings, make_task):
    """The scan runs in a real worker (sent by name, as beat sends it); its commit kicks the dispatcher."""
    from tests.outbox.workers import dispatch_env
    from tests.support.processes import celery_process

    settings.OUTBOX_KICK_ON_COMMIT = True
    sla_config_create(actor=None, name="Visits", task_type="home-visit", target_minutes=30)
    trigger_create(name="Alert on visit breaches", event_type="SLABreached", actions=ESCALATE[:1])
    task = make_task(title="Visit for Cleo", task_type="home-visit")
    # The worker runs on the real clock: make the record overdue there.
    SLARecord.objects.filter(task=task).update(due_at=timezone.now() - timedelta(minutes=1))

    celery_app.control.purge()
    args = ["-P", "solo", "-n", "sla-e2e@%h", "--without-gossip", "--without-mingle"]
    with celery_process("worker", *args, env=dispatch_env()):
        celery_app.send_task("sla.sla_scan")
        alert = wait_until(lambda: Alert.objects.filter(event__event_type="SLABreached").first(), timeout=30)

    assert alert.message.startswith("SLA breached: Visit for Cleo")
    assert SLARecord.objects.get(task=task).status == "breached"
    assert OutboxEvent.objects.filter(event_type="SLABreached").count() == 1
