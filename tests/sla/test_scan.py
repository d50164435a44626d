"""The scan breaches running records past due, once, with one SLABreached event each."""

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command

from outbox.models import OutboxEvent
from sla.metrics import SLA_RECORDS_BREACHED
from sla.models import SLARecord
from sla.scan import sla_scan
from tests.sla.conftest import MONDAY_10


def breached_total() -> float:
    return SLA_RECORDS_BREACHED._value.get()


def test_scan_breaches_overdue_records_and_writes_their_events(
    make_task, intake_config, django_capture_on_commit_callbacks
):
    with time_machine.travel(MONDAY_10, tick=False):
        late = make_task(title="late", priority="high")
    with time_machine.travel(MONDAY_10 + timedelta(minutes=30), tick=False):
        on_time = make_task(title="on time")
    before = breached_total()

    with django_capture_on_commit_callbacks(execute=True):
        result = sla_scan(now=MONDAY_10 + timedelta(minutes=61))

    assert result.breached == 1
    record = SLARecord.objects.get(task=late)
    assert record.status == "breached"
    assert record.breached_at == MONDAY_10 + timedelta(minutes=60)
    assert record.stopped_at is None
    assert SLARecord.objects.get(task=on_time).status == "running"
    event = OutboxEvent.objects.get(event_type="SLABreached")
    assert (event.aggregate_type, event.aggregate_id, event.sequence) == ("sla_record", record.pk, 1)
    assert event.payload["task_id"] == str(late.pk)
    assert event.payload["task_type"] == "intake"
    assert event.payload["service_area"] == "housing"
    assert event.payload["priority"] == "high"
    assert event.payload["config_name"] == intake_config.name
    assert event.payload["due_at"] == record.due_at.isoformat()
    assert event.payload["agency_id"] == str(late.agency_id)
    assert event.actor_id is None
    assert breached_total() == before + 1


def test_a_second_scan_finds_nothing(make_task, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        make_task()
    assert sla_scan(now=MONDAY_10 + timedelta(hours=2)).breached == 1
    assert sla_scan(now=MONDAY_10 + timedelta(hours=3)).breached == 0
    assert OutboxEvent.objects.filter(event_type="SLABreached").count() == 1


def test_paused_records_are_not_breached_by_the_scan(make_task, move, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        task = make_task()
        move(task, "blocked", reason="waiting")
    assert sla_scan(now=MONDAY_10 + timedelta(hours=5)).breached == 0
    assert SLARecord.objects.get(task=task).status == "paused"


def test_scan_works_in_batches(make_task, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        for number in range(5):
            make_task(title=f"task {number}")
    assert sla_scan(now=MONDAY_10 + timedelta(hours=2), batch_size=2).breached == 5
    assert OutboxEvent.objects.filter(event_type="SLABreached").count() == 5


def test_completing_a_breached_task_only_stops_the_record(make_task, move, intake_config):
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task()
        move(task, "in_progress")
        clock.move_to(MONDAY_10 + timedelta(hours=2))
        sla_scan()
        move(task, "completed")
    record = SLARecord.objects.get(task=task)
    assert record.status == "breached"
    assert record.stopped_at == MONDAY_10 + timedelta(hours=2)
    assert OutboxEvent.objects.filter(event_type="SLABreached").count() == 1


def test_management_command_runs_the_scan(make_task, intake_config, capsys):
    with time_machine.travel(MONDAY_10, tick=False):
        make_task()
    with time_machine.travel(MONDAY_10 + timedelta(hours=2), tick=False):
        call_command("sla_scan")
    assert "1 breached" in capsys.readouterr().out


def test_the_celery_task_is_registered_by_name(make_task, intake_config):
    from polaris.celery import app
    from sla.tasks import sla_scan_task

    assert app.tasks["sla.sla_scan"].name == sla_scan_task.name == "sla.sla_scan"
    assert sla_scan_task.soft_time_limit < sla_scan_task.time_limit
    with time_machine.travel(MONDAY_10, tick=False):
        make_task()
    with time_machine.travel(MONDAY_10 + timedelta(hours=2), tick=False):
        assert sla_scan_task.apply().get() == {"breached": 1, "warned": 0}


@pytest.mark.parametrize("microseconds", [0, 123456])
def test_scan_events_carry_the_python_payload(make_task, move, agent, intake_config, microseconds):
    """The scan writes exactly ``sla_breach_payload(..., detected_by="scan")`` for the breached record."""
    from sla.events import sla_breach_payload

    start = MONDAY_10 + timedelta(microseconds=microseconds)
    with time_machine.travel(start, tick=False):
        task = make_task(priority="urgent")
        move(task, "blocked", reason="waiting")
    with time_machine.travel(start + timedelta(minutes=7, microseconds=5), tick=False):
        move(task, "in_progress")
    sla_scan(now=start + timedelta(hours=3))

    record = SLARecord.objects.select_related("config", "task").get(task=task)
    event = OutboxEvent.objects.get(event_type="SLABreached", aggregate_id=record.pk)
    expected = sla_breach_payload(
        record=record, task=record.task, config_name=record.config.name, detected_by="scan"
    )
    assert expected["breached_at"] == record.due_at.isoformat()
    assert event.payload == expected
    assert event.payload["assignee_id"] == agent.pk
    assert event.payload["action_plan_id"] is None


def test_the_breach_scan_issues_the_same_queries_for_any_batch(make_task, intake_config):
    """Set-based: no query per record (e.g. a deferred column read by the breach or its payload)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_breaching(count: int, start) -> int:
        with time_machine.travel(start, tick=False):
            for number in range(count):
                make_task(title=f"task {number}")
        with CaptureQueriesContext(connection) as captured:
            assert sla_scan(now=start + timedelta(hours=2)).breached == count
        return len(captured)

    assert queries_breaching(1, MONDAY_10) == queries_breaching(6, MONDAY_10 + timedelta(days=1))
