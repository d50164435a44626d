"""Warnings: one SLAWarning per percentage reached, never twice."""

from datetime import timedelta

import time_machine

from outbox.models import OutboxEvent
from sla.models import SLARecord
from sla.scan import sla_scan
from tests.sla.conftest import MONDAY_10


def warnings_for(record):
    return list(
        OutboxEvent.objects.filter(aggregate_id=record.pk, event_type="SLAWarning")
        .order_by("sequence")
        .values_list("sequence", "payload__percentage")
    )


def test_one_warning_per_percentage(make_task, make_config):
    make_config(name="visits", task_type="home-visit", target_minutes=100, warning_percentages=[50, 80, 90])
    with time_machine.travel(MONDAY_10, tick=False):
        task = make_task(task_type="home-visit")
    record = SLARecord.objects.get(task=task)
    assert record.next_warning_at == MONDAY_10 + timedelta(minutes=50)

    assert sla_scan(now=MONDAY_10 + timedelta(minutes=49)).warned == 0
    assert sla_scan(now=MONDAY_10 + timedelta(minutes=51)).warned == 1
    assert sla_scan(now=MONDAY_10 + timedelta(minutes=52)).warned == 0
    # Two thresholds passed between scans: two events, in order.
    assert sla_scan(now=MONDAY_10 + timedelta(minutes=95)).warned == 2
    assert sla_scan(now=MONDAY_10 + timedelta(minutes=99)).warned == 0

    record.refresh_from_db()
    assert record.warnings_sent == [50, 80, 90]
    assert record.next_warning_at is None
    assert warnings_for(record) == [(1, 50), (2, 80), (3, 90)]

    # The breach continues the same stream.
    assert sla_scan(now=MONDAY_10 + timedelta(minutes=101)).breached == 1
    breach = OutboxEvent.objects.get(aggregate_id=record.pk, event_type="SLABreached")
    assert breach.sequence == 4


def test_warning_payload_carries_the_task_facts(make_task, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        task = make_task(priority="urgent")
    sla_scan(now=MONDAY_10 + timedelta(minutes=46))
    event = OutboxEvent.objects.get(event_type="SLAWarning")
    assert event.payload["percentage"] == 75
    assert event.payload["task_id"] == str(task.pk)
    assert event.payload["priority"] == "urgent"
    assert event.payload["config_name"] == intake_config.name


def test_warning_time_moves_with_a_pause(make_task, move, intake_config):
    with time_machine.travel(MONDAY_10, tick=False) as clock:
        task = make_task()
        clock.move_to(MONDAY_10 + timedelta(minutes=10))
        move(task, "blocked", reason="waiting")
        clock.move_to(MONDAY_10 + timedelta(minutes=70))
        move(task, "in_progress")
    record = SLARecord.objects.get(task=task)
    assert record.next_warning_at == MONDAY_10 + timedelta(minutes=105)
    assert sla_scan(now=MONDAY_10 + timedelta(minutes=100)).warned == 0
    assert sla_scan(now=MONDAY_10 + timedelta(minutes=106)).warned == 1


def test_a_record_breached_before_its_warning_only_gets_the_breach(make_task, intake_config):
    with time_machine.travel(MONDAY_10, tick=False):
        make_task()
    result = sla_scan(now=MONDAY_10 + timedelta(hours=3))
    assert (result.breached, result.warned) == (1, 0)
