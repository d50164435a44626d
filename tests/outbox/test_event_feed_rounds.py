"""Bounded feed rounds: a backlog (the history after an upgrade, or one transaction that wrote many
events) is positioned ``ROUND_LIMIT`` events per round, in ``(xid, id)`` order, without putting an
aggregate's event before its predecessor; and the upgrade from the previous feed schema keeps positions."""

import threading
import uuid

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from outbox.feed import FeedScope, feed_catch_up, feed_page, feed_sequence
from outbox.models import FeedEntry, FeedState, OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _event(aggregate_id, sequence: int, **fields) -> OutboxEvent:
    return OutboxEvent.objects.create(
        event_type="TaskStateChanged",
        aggregate_type="task",
        aggregate_id=aggregate_id,
        sequence=sequence,
        correlation_id="rounds",
        **fields,
    )


def _assert_feed_order(expected_ids: set[str]) -> list[dict]:
    events = feed_page(scope=FeedScope(), limit=10_000, sequence=False).events
    assert {e["id"] for e in events} == expected_ids
    assert [e["position"] for e in events] == list(range(1, len(events) + 1))
    by_aggregate: dict[str, list[int]] = {}
    for event in events:
        by_aggregate.setdefault(event["aggregate_id"], []).append(event["sequence"])
    assert all(s == list(range(1, len(s) + 1)) for s in by_aggregate.values()), by_aggregate
    return events


def test_one_big_transaction_is_positioned_in_bounded_rounds(monkeypatch):
    monkeypatch.setattr("outbox.feed.ROUND_LIMIT", 7)
    aggregates = [uuid.uuid4() for _ in range(6)]
    with transaction.atomic():  # one xid for all: the rounds resume by (sequence, id) within it
        ids = {str(_event(a, n).id) for n in range(1, 9) for a in aggregates}
    assert feed_sequence() == 7
    state = FeedState.objects.get()
    # Six sequence-1 events and the first sequence-2 one (by id) are placed; it resumes at the second.
    second = sorted(uuid.UUID(e) for e in ids if _seq(e) == 2)[1]
    assert (state.resume_sequence, state.resume_id) == (2, second)
    rounds = [feed_sequence() for _ in range(7)]
    assert rounds == [7, 7, 7, 7, 7, 6, 0]
    _assert_feed_order(ids)
    state = FeedState.objects.get()
    assert (state.resume_sequence, state.resume_id) == (0, uuid.UUID(int=0))  # caught up: at xmin


def _seq(event_id: str) -> int:
    return OutboxEvent.objects.get(pk=event_id).sequence


def test_a_bounded_round_takes_the_predecessor_whose_xid_is_higher(monkeypatch):
    """T2 takes its xid first (a side event), T1 writes event 1 of an aggregate and commits, T2 writes
    event 2 and commits: event 2 has the lower xid. A one-event round that picks event 2 must take
    event 1 with it, before it."""
    monkeypatch.setattr("outbox.feed.ROUND_LIMIT", 1)
    aggregate = uuid.uuid4()
    t2_started, t1_committed = threading.Event(), threading.Event()
    written: list[str] = []

    def t2():
        try:
            with transaction.atomic():
                written.append(str(_event(uuid.uuid4(), 1).id))
                t2_started.set()
                assert t1_committed.wait(10)
                written.append(str(_event(aggregate, 2).id))
        finally:
            connection.close()

    writer = threading.Thread(target=t2)
    writer.start()
    assert t2_started.wait(10)
    with transaction.atomic():
        first = _event(aggregate, 1)
    t1_committed.set()
    writer.join(10)
    assert feed_catch_up() == 3
    events = _assert_feed_order({str(first.id), *written})
    assert [e["sequence"] for e in events if e["aggregate_id"] == str(aggregate)] == [1, 2]


def test_the_upgrade_keeps_positions_and_positions_the_backlog_in_rounds(monkeypatch):
    """From the schema before bounded rounds (0003): positions and the watermark stay; the events left
    without a position get theirs from the next rounds, after the old ones, none twice."""
    executor = MigrationExecutor(connection)
    executor.migrate([("outbox", "0003_event_feed")])
    try:
        old = [str(_event(uuid.uuid4(), 1).id) for _ in range(3)]
        with connection.cursor() as cursor:  # the old round's way: positions in the feed table
            cursor.execute(
                "INSERT INTO outbox_feedentry (position, event_id) SELECT row_number() OVER "
                "(ORDER BY occurred_at), id FROM outbox_outboxevent"
            )
            cursor.execute("INSERT INTO outbox_feedstate (id, watermark) VALUES (1, 1)")
        backlog = [str(_event(uuid.uuid4(), 1).id) for _ in range(5)]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        # Every app's leaf, not only the outbox's: going back to 0003 also unapplied the other apps'
        # migrations that depend on a later outbox one, and the rest of the session needs them.
        executor.migrate(executor.loader.graph.leaf_nodes())
    positions_before = dict(FeedEntry.objects.values_list("event_id", "position"))
    state = FeedState.objects.get()
    assert (state.watermark, state.resume_sequence, state.resume_id) == (1, 0, uuid.UUID(int=0))
    monkeypatch.setattr("outbox.feed.ROUND_LIMIT", 2)
    assert [feed_sequence() for _ in range(4)] == [2, 2, 1, 0]
    events = _assert_feed_order(set(old) | set(backlog))
    assert [e["id"] for e in events[:3]] == old
    assert {uuid.UUID(e["id"]): e["position"] for e in events[:3]} == positions_before


def test_a_round_that_fails_part_way_positions_nothing_and_leaves_the_connection_usable(monkeypatch):
    """Outside a transaction a round is pipelined (BEGIN and the lock, then the assignment, the watermark
    and COMMIT together): a failure after the assignment rolls the whole round back."""
    import dataclasses

    from outbox import feed

    _event(uuid.uuid4(), 1)
    broken = dataclasses.replace(feed._SQL, watermark="SELECT 1 / 0")
    monkeypatch.setattr(feed, "_SQL", broken)
    with pytest.raises(Exception, match="division by zero"):
        feed_sequence()
    assert FeedEntry.objects.count() == 0  # the assignment went with the failed round
    monkeypatch.undo()
    assert feed_sequence() == 1
    assert FeedEntry.objects.count() == 1
