"""Per-aggregate order: an undone earlier event holds back its own aggregate's later events only."""

import uuid
from datetime import timedelta

from django.utils import timezone

from outbox.claims import outbox_claim
from outbox.dispatcher import outbox_dispatch
from outbox.models import OutboxEvent
from outbox.registry import register_handler


def test_only_the_first_undone_event_of_an_aggregate_is_claimed(make_event):
    aggregate = uuid.uuid4()
    first = make_event(aggregate_id=aggregate, sequence=1)
    make_event(aggregate_id=aggregate, sequence=2)
    other = make_event(sequence=1)

    assert {e.id for e in outbox_claim(limit=10)} == {first.id, other.id}
    # The first one is in flight: its successor still waits.
    assert outbox_claim(limit=10) == []


def test_a_retrying_event_holds_back_its_aggregate_and_no_other(make_event):
    aggregate = uuid.uuid4()
    make_event(aggregate_id=aggregate, sequence=1, next_attempt_at=timezone.now() + timedelta(minutes=5))
    make_event(aggregate_id=aggregate, sequence=2)
    unrelated = make_event()
    assert [e.id for e in outbox_claim(limit=10)] == [unrelated.id]


def test_a_dead_event_stops_holding_back_its_successors(make_event):
    aggregate = uuid.uuid4()
    make_event(aggregate_id=aggregate, sequence=1, status=OutboxEvent.Status.DEAD)
    second = make_event(aggregate_id=aggregate, sequence=2)
    assert [e.id for e in outbox_claim(limit=10)] == [second.id]


def test_handlers_see_each_aggregates_events_in_sequence_order(make_event):
    seen: list[tuple[uuid.UUID, int]] = []
    register_handler("order-probe", lambda event: seen.append((event.aggregate_id, event.sequence)))
    aggregates = [uuid.uuid4() for _ in range(3)]
    # Written newest-first in time, so only the sequence can put them right.
    now = timezone.now()
    for sequence in (3, 2, 1):
        for aggregate in aggregates:
            make_event(
                aggregate_id=aggregate, sequence=sequence, next_attempt_at=now - timedelta(seconds=sequence)
            )

    report = outbox_dispatch(budget_seconds=10)

    assert report.dispatched == 9
    for aggregate in aggregates:
        assert [sequence for agg, sequence in seen if agg == aggregate] == [1, 2, 3]
