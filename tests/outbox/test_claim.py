"""Claiming: due rows only, expired leases come back, claimed rows are leased, batches are disjoint."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from outbox.claims import outbox_claim
from outbox.models import OutboxEvent


def test_claims_due_pending_events_oldest_first_and_leases_them(make_event, settings):
    settings.OUTBOX_LEASE_SECONDS = 30
    now = timezone.now()
    older = make_event(next_attempt_at=now - timedelta(seconds=10), occurred_at=now - timedelta(seconds=10))
    newer = make_event(next_attempt_at=now - timedelta(seconds=5), occurred_at=now - timedelta(seconds=5))
    make_event(next_attempt_at=now + timedelta(minutes=1))  # not due yet

    claimed = outbox_claim(limit=10, now=now)

    assert [event.id for event in claimed] == [older.id, newer.id]
    for event in claimed:
        event.refresh_from_db()
        assert event.status == OutboxEvent.Status.PROCESSING
        assert event.attempts == 1
        assert event.locked_until == now + timedelta(seconds=30)
        assert event.next_attempt_at == event.locked_until


def test_limit_takes_the_oldest_due(make_event):
    now = timezone.now()
    events = [make_event(next_attempt_at=now - timedelta(seconds=10 - i)) for i in range(5)]
    assert {e.id for e in outbox_claim(limit=2, now=now)} == {events[0].id, events[1].id}


def test_a_claimed_event_is_not_claimed_again_until_its_lease_expires(make_event, settings):
    settings.OUTBOX_LEASE_SECONDS = 60
    event = make_event()
    assert [e.id for e in outbox_claim(limit=10)] == [event.id]
    assert outbox_claim(limit=10) == []

    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        reclaimed = outbox_claim(limit=10)
    assert [e.id for e in reclaimed] == [event.id]
    assert reclaimed[0].attempts == 2  # a worker that died holding it used up an attempt


def test_dispatched_and_dead_events_are_never_claimed(make_event):
    make_event(status=OutboxEvent.Status.DISPATCHED)
    make_event(status=OutboxEvent.Status.DEAD)
    assert outbox_claim(limit=10) == []


def test_claim_plan_uses_the_partial_due_index(make_event):
    """With a big history the claim must not scan the table: the planner picks outbox_due_idx."""
    make_event()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM outbox_outboxevent WHERE status IN ('pending', 'processing') "
            "AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 500"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "outbox_due_idx" in plan


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_take_disjoint_batches(make_event):
    """A second connection holding row locks makes the claim skip those rows instead of waiting."""
    import psycopg

    from tests.support.processes import database_url_for_tests

    events = [make_event() for _ in range(6)]
    with psycopg.connect(database_url_for_tests()) as other, other.transaction():
        locked = other.execute(
            "SELECT id FROM outbox_outboxevent ORDER BY next_attempt_at LIMIT 3 FOR UPDATE"
        ).fetchall()
        claimed = outbox_claim(limit=10)
    assert {e.id for e in claimed} == {e.id for e in events} - {row[0] for row in locked}


@pytest.mark.django_db
def test_a_prepared_claim_survives_a_column_added_by_a_migration(make_event):
    """The claim is prepared per connection; a ``RETURNING *`` would fail once the table gains a column."""
    for _ in range(6):
        outbox_claim(limit=10)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE outbox_outboxevent ADD COLUMN added_later integer")
    event = make_event()
    assert [claimed.id for claimed in outbox_claim(limit=10)] == [event.id]
