"""Failures: retried with exponential backoff and jitter, dead-lettered after OUTBOX_MAX_ATTEMPTS."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from outbox.dispatcher import outbox_dispatch, retry_delay
from outbox.metrics import OUTBOX_EVENTS_PROCESSED
from outbox.models import OutboxEvent
from outbox.registry import register_handler


def always_fail(event):
    raise RuntimeError("downstream unavailable")


@pytest.mark.parametrize(("attempts", "nominal"), [(1, 2), (2, 4), (3, 8), (5, 32)])
def test_retry_delay_doubles_with_jitter_between_half_and_full(settings, attempts, nominal):
    settings.OUTBOX_RETRY_BASE_SECONDS = 2
    settings.OUTBOX_RETRY_MAX_SECONDS = 3600
    delays = [retry_delay(attempts=attempts).total_seconds() for _ in range(200)]
    assert all(nominal / 2 <= delay <= nominal for delay in delays)
    assert len(set(delays)) > 1  # jittered


def test_retry_delay_is_capped(settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 2
    settings.OUTBOX_RETRY_MAX_SECONDS = 60
    assert retry_delay(attempts=40).total_seconds() <= 60


def test_a_failure_schedules_a_retry_and_keeps_the_error(make_event, settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 2
    register_handler("flaky", always_fail)
    event = make_event()
    before = timezone.now()

    report = outbox_dispatch(budget_seconds=10)

    event.refresh_from_db()
    assert (report.retried, report.dispatched) == (1, 0)
    assert event.status == OutboxEvent.Status.PENDING
    assert event.attempts == 1
    assert before + timedelta(seconds=1) <= event.next_attempt_at <= timezone.now() + timedelta(seconds=2)
    assert "downstream unavailable" in event.last_error
    assert "[flaky]" in event.last_error
    assert event.locked_until is None


def test_dead_lettered_after_max_attempts_then_stops_blocking(make_event, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    settings.OUTBOX_RETRY_BASE_SECONDS = 1
    register_handler("flaky", always_fail, event_types=["Poison"])
    event = make_event(event_type="Poison")
    successor = make_event(aggregate_id=event.aggregate_id, sequence=2)
    dead_before = OUTBOX_EVENTS_PROCESSED.labels("Poison", "dead")._value.get()

    now = timezone.now()
    for attempt in range(1, 4):
        with time_machine.travel(now + timedelta(hours=attempt)):
            outbox_dispatch(budget_seconds=10, max_batches=1)
        event.refresh_from_db()
        assert event.attempts == attempt
    assert event.status == OutboxEvent.Status.DEAD
    assert OUTBOX_EVENTS_PROCESSED.labels("Poison", "dead")._value.get() == dead_before + 1

    # Once dead, the aggregate's later events flow again.
    with time_machine.travel(now + timedelta(hours=4)):
        outbox_dispatch(budget_seconds=10)
    successor.refresh_from_db()
    assert successor.status == OutboxEvent.Status.DISPATCHED


def test_a_retrying_event_is_not_due_before_its_backoff(make_event, settings):
    settings.OUTBOX_RETRY_BASE_SECONDS = 60
    calls = []

    def fail_once(event):
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("first time fails")

    register_handler("fail-once", fail_once)
    event = make_event()
    outbox_dispatch(budget_seconds=10)
    outbox_dispatch(budget_seconds=10)
    assert len(calls) == 1
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        outbox_dispatch(budget_seconds=10)
    event.refresh_from_db()
    assert len(calls) == 2
    assert event.status == OutboxEvent.Status.DISPATCHED
    assert event.dispatched_at is not None
    assert event.last_error == ""


def test_an_event_that_keeps_killing_its_worker_is_dead_lettered_without_running_again(make_event, settings):
    """Claims count as attempts: an event whose worker died (lease expired) every time still ends up dead."""
    settings.OUTBOX_MAX_ATTEMPTS = 3
    calls = []
    register_handler("probe", lambda event: calls.append(event.id))
    # Three claims already used up by workers that never came back.
    event = make_event(attempts=3)

    report = outbox_dispatch(budget_seconds=10)

    event.refresh_from_db()
    assert calls == []
    assert report.dead == 1
    assert event.status == OutboxEvent.Status.DEAD
    assert "claimed 4 times" in event.last_error
