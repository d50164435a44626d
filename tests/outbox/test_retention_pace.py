"""Retention at a pace: a trim rests after each batch in proportion to its work (the duty cycle), and a
run stops when its time is up, leaving the rest to the next run — which finishes the job."""

from datetime import timedelta

import pytest
from django.utils import timezone

from outbox.models import OutboxEvent
from outbox.retention import history_trim
from polaris import retention
from polaris.retention import Pace, retention_run

pytestmark = pytest.mark.django_db
LONG_AGO = timezone.now() - timedelta(days=40)


class FakeClock:
    """``time.monotonic`` and ``time.sleep`` of polaris.retention: every reading of the clock is ``step``
    seconds after the last, so each batch measures ``step`` seconds of work."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.rests = 1000.0, step, []

    def monotonic(self) -> float:
        self.now += self.step
        return self.now

    def sleep(self, seconds: float) -> None:
        self.rests.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock(step=0.1)
    monkeypatch.setattr(retention.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(retention.time, "sleep", fake.sleep)
    return fake


def _old_events(make_event, n: int) -> None:
    for _ in range(n):
        make_event(status="dispatched", dispatched_at=LONG_AGO, occurred_at=LONG_AGO)


def test_a_trim_rests_three_times_its_work_at_the_default_duty_cycle(make_event, settings, clock):
    settings.OUTBOX_EVENT_RETENTION_DAYS = 30
    _old_events(make_event, 5)
    assert history_trim(batch=2) == 5
    assert len(clock.rests) == 3  # one rest per batch
    assert clock.rests == pytest.approx([0.3, 0.3, 0.3])  # duty 0.25: three times its batch's work


def test_at_half_duty_a_trim_rests_as_long_as_it_works(make_event, settings, clock):
    settings.OUTBOX_EVENT_RETENTION_DAYS = 30
    settings.RETENTION_DUTY_CYCLE = 0.5
    _old_events(make_event, 3)
    assert history_trim(batch=2) == 3
    assert clock.rests == pytest.approx([0.1, 0.1])


def test_a_duty_cycle_of_one_never_rests(make_event, settings, clock):
    settings.OUTBOX_EVENT_RETENTION_DAYS = 30
    settings.RETENTION_DUTY_CYCLE = 1.0
    _old_events(make_event, 5)
    assert history_trim(batch=2) == 5
    assert clock.rests == []


def test_a_run_whose_time_is_up_stops_and_the_next_run_goes_on(make_event, settings, clock):
    settings.OUTBOX_EVENT_RETENTION_DAYS = 30
    settings.RETENTION_RUN_SECONDS = 0.3  # room for one batch and its rest, not two
    _old_events(make_event, 5)
    first = history_trim(batch=2)
    assert first == 2
    assert OutboxEvent.objects.count() == 3
    settings.RETENTION_RUN_SECONDS = 60
    assert history_trim(batch=2) == 3
    assert not OutboxEvent.objects.exists()


def test_every_registered_trim_shares_one_run_deadline(settings, clock):
    settings.RETENTION_RUN_SECONDS = 10
    seen = []
    original = retention._trims.copy()
    retention._trims.clear()
    try:
        retention.retention_register("a", lambda *, batch: seen.append(Pace().deadline) or 0)
        retention.retention_register("b", lambda *, batch: seen.append(Pace().deadline) or 0)
        retention_run(batch=10)
    finally:
        retention._trims.clear()
        retention._trims.update(original)
    assert len(seen) == 2
    assert seen[0] == seen[1]  # the second trim does not get a fresh 10 s
    assert Pace().deadline > seen[0]  # outside a run, a trim gets its own
