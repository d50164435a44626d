"""Timer metrics, read from the Prometheus registry before and after: each timer is counted ``scheduled``
once when set and once more as it ended — ``fired`` (its trigger acted), ``not_matched``, or ``cancelled``
(by an ``unless`` event, also one found only at fire time); the pending gauge is the sweep's count; the
lateness histogram observes due → firing for every timer that fell due."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from prometheus_client import REGISTRY

from automation.engine import automation_handle_event
from automation.models import Alert, TriggerTimer
from automation.services import trigger_create
from automation.tasks import timers_sweep_task
from automation.timers import TIMER_FIRED, timers_fire_due
from outbox.models import OutboxEvent
from tests.automation.conftest import dispatch_all
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db

SET_AT = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
DUE_AT = SET_AT + timedelta(minutes=60)
STATES = ("scheduled", "fired", "not_matched", "error", "cancelled")


@pytest.fixture(autouse=True)
def _no_broker(settings):
    settings.TIMER_ARM_ENABLED = False  # nothing to arm: these tests fire by hand
    settings.OUTBOX_KICK_ON_COMMIT = False


@pytest.fixture
def still_new():
    return trigger_create(
        name="still new after an hour",
        event_type="TaskCreated",
        predicate='new_state == "new"',
        actions=[{"type": "emit_alert", "params": {"message": "still new"}}],
        wait_minutes=60,
        unless=["TaskStateChanged"],
    )


def counts() -> dict[str, float]:
    return {
        state: REGISTRY.get_sample_value("automation_timers_total", {"state": state}) or 0.0
        for state in STATES
    }


def lateness() -> tuple[float, float]:
    name = "automation_timer_fire_lateness_seconds"
    return (
        REGISTRY.get_sample_value(f"{name}_count") or 0.0,
        REGISTRY.get_sample_value(f"{name}_sum") or 0.0,
    )


def change(before: dict[str, float]) -> dict[str, float]:
    after = counts()
    return {state: after[state] - before[state] for state in STATES if after[state] != before[state]}


def _set_timer(make_task, capture):
    with time_machine.travel(SET_AT, tick=False), capture(execute=True):
        task = make_task()
        dispatch_all()
    return task


def _fire(capture, *, at: datetime) -> OutboxEvent:
    with time_machine.travel(at, tick=False), capture(execute=True):
        assert timers_fire_due() == 1
        fired = OutboxEvent.objects.get(event_type=TIMER_FIRED)
        automation_handle_event(fired)
    return fired


def test_a_late_unless_event_counts_the_timer_cancelled_not_fired(
    still_new, make_task, agent, django_capture_on_commit_callbacks
):
    before, seen_before = counts(), lateness()
    task = _set_timer(make_task, django_capture_on_commit_callbacks)
    assert change(before) == {"scheduled": 1}
    with time_machine.travel(DUE_AT - timedelta(minutes=5), tick=False):
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)  # not dispatched yet

    fired = _fire(django_capture_on_commit_callbacks, at=DUE_AT + timedelta(seconds=3))

    assert TriggerTimer.objects.get().state == "cancelled"
    assert not Alert.objects.exists()
    assert change(before) == {"scheduled": 1, "cancelled": 1}
    # The firing itself was 3 s late, whatever the re-check then decided.
    seen = lateness()
    assert (seen[0] - seen_before[0], seen[1] - seen_before[1]) == (1, pytest.approx(3.0))
    with django_capture_on_commit_callbacks(execute=True):
        automation_handle_event(fired)  # redelivered: already recorded, not counted again
    assert change(before) == {"scheduled": 1, "cancelled": 1}


def test_a_timer_whose_trigger_acts_counts_fired_and_its_lateness(
    still_new, make_task, django_capture_on_commit_callbacks
):
    before, seen_before = counts(), lateness()
    _set_timer(make_task, django_capture_on_commit_callbacks)
    _fire(django_capture_on_commit_callbacks, at=DUE_AT + timedelta(milliseconds=250))
    assert Alert.objects.count() == 1
    assert change(before) == {"scheduled": 1, "fired": 1}
    seen = lateness()
    assert (seen[0] - seen_before[0], seen[1] - seen_before[1]) == (1, pytest.approx(0.25))


def test_a_timer_whose_predicate_no_longer_holds_counts_not_matched(
    make_task, agent, django_capture_on_commit_callbacks
):
    trigger_create(  # no unless: the move does not cancel, the re-check at fire time refuses
        name="still new, no unless",
        event_type="TaskCreated",
        predicate='new_state == "new"',
        actions=[{"type": "emit_alert", "params": {"message": "still new"}}],
        wait_minutes=60,
    )
    before = counts()
    task = _set_timer(make_task, django_capture_on_commit_callbacks)
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch_all()
    _fire(django_capture_on_commit_callbacks, at=DUE_AT)
    assert TriggerTimer.objects.get().state == "fired"
    assert change(before) == {"scheduled": 1, "not_matched": 1}


def test_an_unless_event_handled_in_time_counts_cancelled_once(
    still_new, make_task, agent, django_capture_on_commit_callbacks
):
    before = counts()
    task = _set_timer(make_task, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
        dispatch_all()
    with time_machine.travel(DUE_AT, tick=False):
        assert timers_fire_due() == 0
    assert change(before) == {"scheduled": 1, "cancelled": 1}


def test_the_pending_gauge_is_the_sweeps_count(still_new, make_task, django_capture_on_commit_callbacks):
    with time_machine.travel(SET_AT, tick=False), django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            make_task(title=f"Intake {n}")
        dispatch_all()
    with time_machine.travel(SET_AT + timedelta(minutes=1), tick=False):
        timers_sweep_task()  # nothing due yet
    assert REGISTRY.get_sample_value("automation_timers_pending") == 3
    with time_machine.travel(DUE_AT, tick=False), django_capture_on_commit_callbacks(execute=True):
        timers_sweep_task()  # fires all three, then counts what is left
    assert REGISTRY.get_sample_value("automation_timers_pending") == 0
    assert TriggerTimer.objects.filter(state="fired").count() == 3
