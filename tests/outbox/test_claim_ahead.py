"""Claiming the next batch while the current one is handled: the same effects, order and hand-backs."""

import threading

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from outbox import claims, dispatcher
from outbox.dispatcher import outbox_dispatch
from outbox.models import OutboxEvent
from outbox.registry import register_handler
from tests.outbox.conftest import probe_events_bulk
from tests.support import effect_probe as effects

BATCH = 10


@pytest.fixture
def claimers(monkeypatch):
    """The names of the threads that claimed, one entry per claim that got events."""
    names: list[str] = []

    def recording_claim(**kwargs):
        events = claims.outbox_claim(**kwargs)
        if events:
            names.append(threading.current_thread().name)
        return events

    monkeypatch.setattr(dispatcher, "outbox_claim", recording_claim)
    return names


@pytest.mark.django_db(transaction=True)
def test_a_long_backlog_is_claimed_ahead_with_every_effect_once_and_in_order(effect_handler, claimers):
    # Two events per aggregate: the second waits for the first, whichever batch claims it.
    probe_events_bulk(count=6 * BATCH, aggregates=3 * BATCH)

    report = outbox_dispatch(batch_size=BATCH, budget_seconds=60)

    assert report.dispatched == 6 * BATCH
    assert effects.effect_counts() == (6 * BATCH, 6 * BATCH, 0)
    assert effects.order_violations() == 0
    assert any(name.startswith("outbox-claim-ahead") for name in claimers)
    assert not OutboxEvent.objects.exclude(status=OutboxEvent.Status.DISPATCHED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_fails_hands_back_the_batch_claimed_ahead(claimers):
    probe_events_bulk(count=5 * BATCH)
    calls = {"n": 0}

    def out_of_time_in_the_third_batch(event):
        calls["n"] += 1
        if calls["n"] > 2 * BATCH:
            raise SoftTimeLimitExceeded()

    register_handler("slow", out_of_time_in_the_third_batch)
    with pytest.raises(SoftTimeLimitExceeded):
        outbox_dispatch(batch_size=BATCH, budget_seconds=60)

    assert claimers[-1].startswith("outbox-claim-ahead")  # the fourth batch: claimed ahead, handed back
    statuses = list(OutboxEvent.objects.values_list("status", "attempts"))
    assert statuses.count((OutboxEvent.Status.DISPATCHED, 1)) == 2 * BATCH
    assert statuses.count((OutboxEvent.Status.PENDING, 0)) == 3 * BATCH  # nothing left processing


@pytest.mark.django_db
def test_rows_the_caller_has_not_committed_are_claimed_on_its_own_connection(effect_handler):
    # A test's transaction is invisible to the helper's connection: it claims nothing, the caller does.
    probe_events_bulk(count=4 * BATCH)
    report = outbox_dispatch(batch_size=BATCH, budget_seconds=60)
    assert report.dispatched == 4 * BATCH
    assert effects.effect_counts() == (4 * BATCH, 4 * BATCH, 0)


@pytest.mark.django_db(transaction=True)
def test_the_claim_ahead_connection_is_closed_when_dispatch_ends(effect_handler, claimers, caplog):
    from django.db import connection

    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            return cursor.fetchone()[0]

    before = backends()
    probe_events_bulk(count=6 * BATCH)

    outbox_dispatch(batch_size=BATCH, budget_seconds=60)

    assert any(name.startswith("outbox-claim-ahead") for name in claimers)  # a second connection was used
    assert "could not close the claim-ahead connection" not in caplog.text
    assert backends() == before  # and it is gone, not left for the garbage collector
