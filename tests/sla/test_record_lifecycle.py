"""A task's SLA record follows the task: start, pause/resume, met, late completion, cancellation."""

from datetime import timedelta

import time_machine

from outbox.models import OutboxEvent
from sla.models import SLARecord
from tests.sla.conftest import MONDAY_10


def record_of(task) -> SLARecord:
    return SLARecord.objects.get(task=task)


def test_creating_a_task_starts_its_record_with_a_snapshot(make_task, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        task = make_task()
    record = record_of(task)
    assert record.status == "running"
    assert record.config == intake_config
    assert record.target_minutes == 60
    assert record.calendar_snapshot is None
    assert record.started_at == MONDAY_10
    assert record.due_at == MONDAY_10 + timedelta(minutes=60)
    assert record.next_warning_at == MONDAY_10 + timedelta(minutes=45)
    assert record.warning_percentages == [75]
    assert record.pause_states == ["blocked"]


def test_no_matching_config_means_no_record(make_task):
    task = make_task(task_type="home-visit")
    assert not SLARecord.objects.filter(task=task).exists()


def test_pause_and_resume_push_due_by_the_paused_time(make_task, move, intake_config):
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task()
        move(task, "in_progress")
        clock.move_to(MONDAY_10 + timedelta(minutes=20))
        move(task, "blocked", reason="waiting for documents")
        record = record_of(task)
        assert record.status == "paused"
        assert record.paused_at == MONDAY_10 + timedelta(minutes=20)

        clock.move_to(MONDAY_10 + timedelta(minutes=50))
        move(task, "in_progress")
    record = record_of(task)
    assert record.status == "running"
    assert record.paused_at is None
    assert record.paused_seconds == 30 * 60
    assert record.due_at == MONDAY_10 + timedelta(minutes=90)
    assert record.next_warning_at == MONDAY_10 + timedelta(minutes=75)


def test_completion_in_time_is_met(make_task, move, intake_config):
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task()
        move(task, "in_progress")
        clock.move_to(MONDAY_10 + timedelta(minutes=59))
        move(task, "completed")
    record = record_of(task)
    assert record.status == "met"
    assert record.stopped_at == MONDAY_10 + timedelta(minutes=59)
    assert record.breached_at is None
    # One SLAMet: the outcome the trends count (a task without an SLA record has none).
    event = OutboxEvent.objects.get(aggregate_type="sla_record", aggregate_id=record.pk)
    assert event.event_type == "SLAMet"
    assert event.sequence == record.version == 1
    assert event.payload["task_id"] == str(task.pk)
    assert event.payload["met_at"] == record.stopped_at.isoformat()
    assert event.payload["due_at"] == record.due_at.isoformat()


def test_completing_a_paused_task_on_time_writes_what_the_pause_moved(make_task, move, intake_config):
    intake_config.pause_states = ["in_progress"]  # completed is reached from in_progress only
    intake_config.save()
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task()
        clock.move_to(MONDAY_10 + timedelta(minutes=30))
        move(task, "in_progress")
        clock.move_to(MONDAY_10 + timedelta(minutes=50))
        move(task, "completed")
    record = record_of(task)
    assert (record.status, record.paused_at, record.paused_seconds) == ("met", None, 20 * 60)
    assert record.due_at == MONDAY_10 + timedelta(minutes=80)
    assert OutboxEvent.objects.get(aggregate_type="sla_record").event_type == "SLAMet"


def test_late_completion_is_a_breach_with_its_event(make_task, move, intake_config):
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task()
        move(task, "in_progress")
        clock.move_to(MONDAY_10 + timedelta(minutes=61))
        move(task, "completed")
    record = record_of(task)
    assert record.status == "breached"
    assert record.breached_at == MONDAY_10 + timedelta(minutes=60)
    assert record.stopped_at == MONDAY_10 + timedelta(minutes=61)
    event = OutboxEvent.objects.get(aggregate_type="sla_record", aggregate_id=record.pk)
    assert event.event_type == "SLABreached"
    assert event.sequence == record.version == 1
    assert event.payload["task_id"] == str(task.pk)
    assert event.payload["detected_by"] == "completion"


def test_cancellation_stops_the_clock_as_cancelled(make_task, move, intake_config):
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task()
        clock.move_to(MONDAY_10 + timedelta(minutes=90))  # even when late: cancelled is not breached
        move(task, "cancelled")
    record = record_of(task)
    assert record.status == "cancelled"
    assert record.stopped_at == MONDAY_10 + timedelta(minutes=90)
    assert not OutboxEvent.objects.filter(aggregate_type="sla_record").exists()


def test_cancelling_a_paused_task_cancels_its_record(make_task, move, intake_config):
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task()
        move(task, "blocked", reason="waiting")
        clock.move_to(MONDAY_10 + timedelta(minutes=10))
        move(task, "cancelled")
    record = record_of(task)
    assert record.status == "cancelled"
    assert record.paused_seconds == 600
    assert record.paused_at is None


def test_blocking_after_the_due_time_breaches_instead_of_pausing(make_task, move, intake_config):
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task()
        clock.move_to(MONDAY_10 + timedelta(minutes=70))
        move(task, "blocked", reason="too late to stop the clock")
    record = record_of(task)
    assert record.status == "breached"
    assert record.stopped_at is None
    assert OutboxEvent.objects.filter(aggregate_id=record.pk, event_type="SLABreached").count() == 1


def test_a_rolled_back_transition_leaves_the_record_alone(make_task, intake_config, agent):
    import pytest
    from django.db import transaction

    from workflow.services.tasks import task_transition

    task = make_task()
    with pytest.raises(RuntimeError), transaction.atomic():
        task_transition(task_id=task.pk, target_state="blocked", actor=agent, reason="x")
        assert record_of(task).status == "paused"
        raise RuntimeError("roll back")
    assert record_of(task).status == "running"
