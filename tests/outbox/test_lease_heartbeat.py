"""Short leases and the heartbeat: a live batch keeps its claim however slow it is; a lapsed claim taken by
another worker is not renewed by the first; without the heartbeat a slow batch's claim lapses (control)."""

import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connections
from django.utils import timezone

from outbox.claims import outbox_claim, outbox_renew
from outbox.dispatcher import outbox_dispatch
from outbox.models import OutboxEvent
from outbox.registry import register_handler
from polaris.leases import LeaseHeartbeat
from tests.outbox.conftest import probe_events_bulk

LEASE = 0.6
EVENTS = 4
HANDLER_SECONDS = 0.4  # four events: a batch of 1.6 s, well past the 0.6 s lease


def test_renewing_extends_only_claims_still_held(make_event, settings):
    settings.OUTBOX_LEASE_SECONDS = 5
    held, lost = make_event(), make_event()
    claimed = outbox_claim(limit=10)
    with time_machine.travel(timezone.now() + timedelta(seconds=6)):
        # ``lost``'s lease ran out and another worker claimed it (attempts 2): ours is attempts 1.
        OutboxEvent.objects.filter(pk=lost.pk).update(attempts=2)
        assert outbox_renew(events=claimed) == 1
        held.refresh_from_db()
        assert held.locked_until == held.next_attempt_at
        assert held.locked_until > timezone.now() + timedelta(seconds=4)


def test_a_heartbeat_that_fails_keeps_beating(caplog):
    calls = []

    def renew() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")
        return 1

    with LeaseHeartbeat(renew=renew, every=0.02, expected=1):
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(calls) >= 3
    assert "heartbeat failed" in caplog.text


def run_slow_batch_against_a_rival(settings, *, heartbeat: float) -> int:
    """Dispatch one slow batch while a rival claimer polls; returns how many events the rival got."""
    settings.OUTBOX_LEASE_SECONDS = LEASE
    settings.OUTBOX_HEARTBEAT_SECONDS = heartbeat
    claimed = threading.Event()

    def slow(event) -> None:
        claimed.set()
        time.sleep(HANDLER_SECONDS)

    register_handler("slow", slow)
    probe_events_bulk(count=EVENTS)
    done = threading.Event()
    stolen: list = []

    def rival() -> None:
        # The rival starts polling once our batch holds its claim: racing the first claim is not the point.
        claimed.wait(timeout=10)
        try:
            while not done.is_set():
                stolen.extend(outbox_claim(limit=EVENTS))
                time.sleep(0.05)
        finally:
            connections.close_all()

    thread = threading.Thread(target=rival)
    thread.start()
    try:
        report = outbox_dispatch(batch_size=EVENTS, max_batches=1)
    finally:
        done.set()
        thread.join()
    assert report.claimed == EVENTS
    return len(stolen)


@pytest.mark.django_db(transaction=True)
def test_a_batch_slower_than_its_lease_is_not_claimed_twice(settings):
    assert run_slow_batch_against_a_rival(settings, heartbeat=LEASE / 3) == 0
    assert set(OutboxEvent.objects.values_list("status", "attempts")) == {("dispatched", 1)}


@pytest.mark.django_db(transaction=True)
def test_without_the_heartbeat_the_same_batch_loses_its_claim(settings):
    # The control: the test above would pass for nothing if the rival could not claim at all.
    assert run_slow_batch_against_a_rival(settings, heartbeat=0) >= EVENTS
