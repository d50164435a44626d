"""Timed triggers in business time: set on the matching event, cancelled by ``unless``, re-checked at fire
time, fired exactly once (time-machine travels; the engine runs in-process)."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import IntegrityError, transaction

from automation.models import Alert, TriggerExecution, TriggerTimer
from automation.services import trigger_create, trigger_update
from automation.timers import TIMER_FIRED, timers_fire_due
from outbox.models import OutboxEvent
from sla.models import BusinessCalendar
from tests.automation.conftest import dispatch_all
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db

# Friday 4 December 2026, 14:00 in London (UTC in winter). Monday 7 December is a holiday here.
FRIDAY_14 = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
# 240 working minutes from Friday 14:00 with 09:00-17:00: 3 h on Friday, none at the weekend, none on the
# Monday holiday, the last hour on Tuesday: 10:00.
TUESDAY_10 = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)


@pytest.fixture
def london(db):
    return BusinessCalendar.objects.create(
        name="London office",
        time_zone="Europe/London",
        working_hours={
            **{day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
            "sat": [],
            "sun": [],
        },
        holidays=["2026-12-07"],
    )


@pytest.fixture
def still_new(london):
    return trigger_create(
        name="intake still new after 4 business hours",
        event_type="TaskCreated",
        predicate='task_type == "intake" and new_state == "new"',
        actions=[{"type": "emit_alert", "params": {"message": "Intake $title is still new"}}],
        wait_minutes=240,
        wait_calendar_id=london.pk,
        unless=["TaskStateChanged"],
    )


def _timer() -> TriggerTimer:
    return TriggerTimer.objects.get()


def test_240_business_minutes_across_a_weekend_and_a_holiday_fire_at_the_right_instant(still_new, make_task):
    with time_machine.travel(FRIDAY_14, tick=False):
        task = make_task(title="Intake for Cleo")
        dispatch_all()
    timer = _timer()
    assert (timer.state, timer.due_at, timer.task_id) == ("pending", TUESDAY_10, task.pk)
    scheduled = TriggerExecution.objects.get(trigger=still_new)
    assert scheduled.outcome == "scheduled"

    with time_machine.travel(datetime(2026, 12, 8, 9, 59, 59, tzinfo=UTC), tick=False):
        assert timers_fire_due() == 0
    with time_machine.travel(TUESDAY_10, tick=False):
        assert timers_fire_due() == 1
        assert timers_fire_due() == 0  # fired once: the row is no longer pending
        dispatch_all()

    timer.refresh_from_db()
    assert (timer.state, timer.fired_at) == ("fired", TUESDAY_10)
    fired = OutboxEvent.objects.get(event_type=TIMER_FIRED)
    assert fired.payload["timer_id"] == str(timer.pk)
    assert fired.causation_id == timer.event_id
    execution = TriggerExecution.objects.get(trigger=still_new, event=fired)
    assert (execution.outcome, execution.trigger_version) == ("matched", still_new.version)
    assert Alert.objects.get().message == "Intake Intake for Cleo is still new"
    assert Alert.objects.get().agency_id == task.agency_id


def test_an_unless_event_cancels_the_timer(still_new, make_task, agent):
    with time_machine.travel(FRIDAY_14, tick=False):
        task = make_task()
        dispatch_all()
    with time_machine.travel(datetime(2026, 12, 4, 15, 0, tzinfo=UTC), tick=False):
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
        dispatch_all()
    timer = _timer()
    assert timer.state == "cancelled"
    assert timer.cancelled_by.event_type == "TaskStateChanged"
    with time_machine.travel(TUESDAY_10, tick=False):
        assert timers_fire_due() == 0
    assert not Alert.objects.exists()


def test_an_unless_event_not_yet_dispatched_at_fire_time_still_cancels(still_new, make_task, agent):
    with time_machine.travel(FRIDAY_14, tick=False):
        task = make_task()
        dispatch_all()
    with time_machine.travel(datetime(2026, 12, 8, 9, 30, tzinfo=UTC), tick=False):
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)  # not dispatched yet
    with time_machine.travel(TUESDAY_10, tick=False):
        assert timers_fire_due() == 1
        fired = OutboxEvent.objects.get(event_type=TIMER_FIRED)
        from automation.engine import automation_handle_event

        automation_handle_event(fired)
    execution = TriggerExecution.objects.get(event__event_type=TIMER_FIRED)
    assert execution.outcome == "not_matched"
    assert "TaskStateChanged happened" in execution.error
    assert _timer().state == "cancelled"
    assert not Alert.objects.exists()


def test_a_timer_whose_predicate_no_longer_holds_records_not_matched_and_does_nothing(
    london, make_task, agent
):
    # No unless: the task moves on, and at fire time the re-check sees its current state.
    trigger = trigger_create(
        name="intake still new",
        event_type="TaskCreated",
        predicate='new_state == "new"',
        actions=[{"type": "emit_alert", "params": {"message": "still new"}}],
        wait_minutes=60,
    )
    with time_machine.travel(FRIDAY_14, tick=False):
        task = make_task()
        dispatch_all()
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
        dispatch_all()
    assert _timer().due_at == datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # wall-clock: no calendar
    with time_machine.travel(datetime(2026, 12, 4, 15, 0, 1, tzinfo=UTC), tick=False):
        assert timers_fire_due() == 1
        dispatch_all()
    execution = TriggerExecution.objects.get(trigger=trigger, event__event_type=TIMER_FIRED)
    assert execution.outcome == "not_matched"
    assert execution.error == "The predicate no longer holds."
    assert not Alert.objects.exists()
    assert _timer().state == "fired"


def test_a_redelivered_timer_fired_event_acts_once(still_new, make_task):
    with time_machine.travel(FRIDAY_14, tick=False):
        make_task()
        dispatch_all()
    with time_machine.travel(TUESDAY_10, tick=False):
        timers_fire_due()
        fired = OutboxEvent.objects.get(event_type=TIMER_FIRED)
        from automation.engine import automation_handle_event

        automation_handle_event(fired)
        # The single-write path re-raises the duplicate: the dispatcher rolls the event back.
        with pytest.raises(IntegrityError), transaction.atomic():
            automation_handle_event(fired)
    assert Alert.objects.count() == 1


def test_editing_unless_keeps_pending_timers_in_step(still_new, make_task, agent):
    with time_machine.travel(FRIDAY_14, tick=False):
        task = make_task()
        dispatch_all()
    trigger_update(trigger_id=still_new.pk, changes={"unless": []})
    with time_machine.travel(datetime(2026, 12, 4, 15, 0, tzinfo=UTC), tick=False):
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
        dispatch_all()
    assert _timer().state == "pending"  # the trigger no longer lists TaskStateChanged


def test_an_agency_scoped_trigger_sees_only_its_agency(
    london, make_task, other_agency, other_client, other_agent
):
    trigger_create(
        name="other agency only",
        event_type="TaskCreated",
        actions=[{"type": "emit_alert", "params": {"message": "hello"}}],
        agency_id=other_agency.pk,
    )
    make_task()
    dispatch_all()
    assert not Alert.objects.exists()
    make_task(agency=other_agency, client=other_client, actor=other_agent, assignee=other_agent)
    dispatch_all()
    assert Alert.objects.count() == 1


def test_the_task_representation_lists_its_timers(still_new, make_task, admin_user):
    from rest_framework.test import APIClient

    with time_machine.travel(FRIDAY_14, tick=False):
        task = make_task()
        dispatch_all()
    client = APIClient()
    client.force_authenticate(admin_user)
    body = client.get(f"/api/workflow/tasks/{task.pk}").json()
    assert [(t["trigger"], t["state"], t["due_at"]) for t in body["timers"]] == [
        (still_new.name, "pending", TUESDAY_10.isoformat())
    ]
    listed = client.get("/api/workflow/tasks").json()["results"]
    assert listed[0]["timers"][0]["id"] == str(_timer().pk)
