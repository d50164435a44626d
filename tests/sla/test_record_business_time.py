"""Records on a business calendar: due dates skip nights and weekends, pauses count only working time, and
the calendar is snapshotted at start."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine

from sla.clock import sla_record_remaining_seconds
from sla.models import SLARecord
from sla.scan import sla_scan

LONDON = ZoneInfo("Europe/London")


def at(*args):
    return datetime(*args, tzinfo=LONDON)


def test_due_date_skips_the_night_and_the_weekend(make_task, make_config, office_calendar):
    make_config(name="visits", task_type="home-visit", target_minutes=120, calendar=office_calendar)
    with time_machine.travel(at(2026, 3, 6, 16, 30), tick=False):  # Friday 16:30
        task = make_task(task_type="home-visit")
    record = SLARecord.objects.get(task=task)
    assert record.due_at == at(2026, 3, 9, 10, 30)  # Monday 10:30
    assert record.next_warning_at == at(2026, 3, 9, 10, 0)  # 75 % of 120 min = 90 min
    assert record.calendar_snapshot["time_zone"] == "Europe/London"
    # Saturday: no working time passes, nothing is due.
    assert sla_scan(now=at(2026, 3, 7, 12, 0)).breached == 0
    assert sla_record_remaining_seconds(record, now=at(2026, 3, 7, 12, 0)) == 90 * 60


def test_a_pause_over_the_weekend_costs_only_its_working_time(make_task, make_config, office_calendar, move):
    make_config(name="visits", task_type="home-visit", target_minutes=240, calendar=office_calendar)
    with time_machine.travel(at(2026, 3, 6, 9, 0), tick=False) as clock:  # Friday 09:00
        task = make_task(task_type="home-visit")
        clock.move_to(at(2026, 3, 6, 10, 0))
        move(task, "blocked", reason="waiting for the landlord")
        clock.move_to(at(2026, 3, 9, 11, 0))  # Monday 11:00: paused 7 h Friday + 2 h Monday
        move(task, "in_progress")
    record = SLARecord.objects.get(task=task)
    assert record.paused_seconds == 9 * 3600
    # 1 h used before the pause, 3 h left from Monday 11:00.
    assert record.due_at == at(2026, 3, 9, 14, 0)


def test_editing_the_calendar_leaves_running_records_alone(make_task, make_config, office_calendar):
    make_config(name="visits", task_type="home-visit", target_minutes=120, calendar=office_calendar)
    with time_machine.travel(at(2026, 3, 6, 16, 30), tick=False):
        task = make_task(task_type="home-visit")
    office_calendar.working_hours = {**office_calendar.working_hours, "sat": [["09:00", "17:00"]]}
    office_calendar.save()
    record = SLARecord.objects.get(task=task)
    assert record.due_at == at(2026, 3, 9, 10, 30)
    assert sla_scan(now=at(2026, 3, 7, 12, 0)).breached == 0
    assert record.calendar_snapshot["working_hours"]["sat"] == []


def test_dst_change_between_start_and_due(make_task, make_config, db):
    from sla.models import BusinessCalendar

    new_york = BusinessCalendar.objects.create(name="NY office", time_zone="America/New_York")
    make_config(name="visits", task_type="home-visit", target_minutes=120, calendar=new_york)
    eastern = ZoneInfo("America/New_York")
    with time_machine.travel(datetime(2026, 3, 6, 16, 0, tzinfo=eastern), tick=False):  # Friday, EST
        task = make_task(task_type="home-visit")
    record = SLARecord.objects.get(task=task)
    assert record.due_at == datetime(2026, 3, 9, 10, 0, tzinfo=eastern)  # Monday 10:00 EDT
    assert record.due_at - record.started_at == timedelta(days=2, hours=17)  # 18 h wall clock, minus 1 h DST
