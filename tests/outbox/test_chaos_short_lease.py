"""Chaos: short leases with a heartbeat, on real worker processes. A worker SIGKILLed mid-batch has its
events redelivered within the short lease (not a minute later); a batch slowed well past the lease by a slow
handler keeps its claim, so no event is claimed twice while two workers compete."""

import time

import pytest
from django.db import connection
from django.utils import timezone

from outbox.models import OutboxEvent
from outbox.tasks import outbox_dispatch_task
from polaris.celery import app as celery_app
from tests.outbox.conftest import probe_events_bulk
from tests.outbox.workers import kill_hard, outbox_status_counts, start_worker, worker
from tests.support import effect_probe as effects
from tests.support.processes import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

LEASE = 2.0


def nudge_until_drained(expected: int, timeout: float) -> None:
    def drained() -> bool:
        outbox_dispatch_task.delay()  # as beat would
        return outbox_status_counts().get("dispatched", 0) == expected

    wait_until(drained, timeout=timeout, interval=0.25)


def test_a_worker_killed_mid_batch_has_its_events_redelivered_within_the_lease(effect_table):
    events = 200
    env = {
        "OUTBOX_LEASE_SECONDS": str(LEASE),
        "OUTBOX_DISPATCH_BATCH_SIZE": "20",
        "POLARIS_TEST_HANDLER_DELAY_SECONDS": "0.05",  # a batch takes about a second: long enough to kill
    }
    probe_events_bulk(count=events)
    celery_app.control.purge()
    victim = start_worker("victim", **env)
    try:
        outbox_dispatch_task.delay()
        wait_until(lambda: effects.effect_counts()[0] >= 20, timeout=60)  # its first batch committed
        time.sleep(0.3)  # well inside the next batch
        kill_hard(victim)
        killed_at = timezone.now()
    finally:
        victim.stop()
    orphans = list(OutboxEvent.objects.filter(status="processing").values_list("id", "locked_until"))
    assert orphans, "the kill landed between batches; the test proved nothing"
    # Leases renewed by a live worker end at most one lease after its last beat: the orphans are due again
    # (claimable by anyone) within the short lease, not the old minute.
    assert max(until for _, until in orphans) <= killed_at + timezone.timedelta(seconds=LEASE + 0.5)

    with worker("survivor", **env):
        nudge_until_drained(events, timeout=60)

    redelivered = OutboxEvent.objects.filter(pk__in=[pk for pk, _ in orphans])
    assert set(redelivered.values_list("status", "attempts")) == {("dispatched", 2)}  # claimed once more
    assert effects.effect_counts() == (events, events, 0)  # the killed batch's effects rolled back with it


def test_a_batch_slowed_past_its_lease_is_not_claimed_twice_by_a_competing_worker(effect_table):
    events = 16
    env = {
        "OUTBOX_LEASE_SECONDS": "1",
        "OUTBOX_DISPATCH_BATCH_SIZE": "4",
        "POLARIS_TEST_HANDLER_DELAY_SECONDS": "0.6",  # a batch of 2.4 s: more than twice the lease
    }
    probe_events_bulk(count=events)
    celery_app.control.purge()
    with worker("slow-a", **env), worker("slow-b", **env):
        nudge_until_drained(events, timeout=60)

    # Every claim counts an attempt: a batch taken over by the other worker would show attempts 2.
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(attempts), count(*) FROM outbox_outboxevent")
        assert cursor.fetchone() == (1, events)
    assert effects.effect_counts() == (events, events, 0)
