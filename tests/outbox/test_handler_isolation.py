"""A failing handler stops neither the other handlers nor the other events, and its effects roll back."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection

from outbox.dispatcher import outbox_dispatch
from outbox.models import HandledEvent, OutboxEvent
from outbox.registry import register_handler
from tests.support import effect_probe as effects


def test_one_failing_event_among_many(make_event, effect_handler):
    events = [make_event() for _ in range(20)]
    poison = events[7]

    def fail_on_poison(event):
        # Write something first: it must roll back with the failure.
        effects.record_effect(event)
        if event.id == poison.id:
            raise ValueError("cannot handle this one")

    register_handler("picky", fail_on_poison)
    report = outbox_dispatch(budget_seconds=10)

    assert (report.dispatched, report.retried) == (19, 1)
    statuses = dict(OutboxEvent.objects.values_list("id", "status"))
    assert statuses[poison.id] == OutboxEvent.Status.PENDING
    assert sum(status == OutboxEvent.Status.DISPATCHED for status in statuses.values()) == 19
    # The good handler handled all 20; the picky one 19, and the poison event's effect was rolled back.
    assert HandledEvent.objects.filter(handler=effects.HANDLER_NAME).count() == 20
    assert HandledEvent.objects.filter(handler="picky").count() == 19
    assert effects.effect_counts() == (39, 20, 19)


def test_a_handler_breaking_the_transaction_does_not_poison_the_batch(make_event):
    """A handler whose SQL fails aborts the transaction; the savepoint path keeps the others going."""
    events = [make_event() for _ in range(3)]

    def bad_sql(event):
        if event.id == events[1].id:
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table")

    register_handler("bad-sql", bad_sql)
    report = outbox_dispatch(budget_seconds=10)
    assert (report.dispatched, report.retried) == (2, 1)
    assert "no_such_table" in OutboxEvent.objects.get(pk=events[1].pk).last_error


def test_retry_runs_only_the_handler_that_failed(make_event):
    calls = {"good": 0, "bad": 0}
    state = {"fail": True}

    def good(event):
        calls["good"] += 1

    def bad(event):
        calls["bad"] += 1
        if state["fail"]:
            raise RuntimeError("boom")

    register_handler("good", good)
    register_handler("bad", bad)
    event = make_event()
    outbox_dispatch(budget_seconds=10)
    state["fail"] = False
    OutboxEvent.objects.filter(pk=event.pk).update(next_attempt_at=event.occurred_at)
    outbox_dispatch(budget_seconds=10)

    assert calls == {"good": 1, "bad": 2}
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.DISPATCHED


def test_a_soft_time_limit_is_not_a_handler_failure_and_hands_the_batch_back(make_event):
    def out_of_time(event):
        raise SoftTimeLimitExceeded()

    register_handler("slow", out_of_time)
    event = make_event()
    with pytest.raises(SoftTimeLimitExceeded):
        outbox_dispatch(budget_seconds=10)
    event.refresh_from_db()
    # Released: due again now, the interrupted claim not counted, no error recorded.
    assert (event.status, event.attempts, event.last_error) == (OutboxEvent.Status.PENDING, 0, "")


def test_a_batch_handler_is_called_once_per_batch(make_event):
    events = [make_event() for _ in range(5)]
    batches, singles = [], []
    register_handler("both", singles.append, many=lambda batch: batches.append([e.id for e in batch]))

    report = outbox_dispatch(budget_seconds=10)

    assert report.dispatched == 5
    assert batches == [[event.id for event in events]]  # one call, in stream order
    assert singles == []
    assert HandledEvent.objects.filter(handler="both").count() == 5


def test_a_failing_batch_is_redone_event_by_event(make_event, effect_table):
    events = [make_event() for _ in range(6)]
    poison = events[2]

    def many(batch):
        effects.record_effects(batch)  # written, then rolled back with the failure
        raise RuntimeError("one of these is bad")

    def one(event):
        if event.id == poison.id:
            raise ValueError("cannot handle this one")
        effects.record_effect(event)

    register_handler("batchy", one, many=many)
    report = outbox_dispatch(budget_seconds=10)

    assert (report.dispatched, report.retried) == (5, 1)
    assert effects.handled_event_ids() == {event.id for event in events} - {poison.id}
    assert effects.effect_counts() == (5, 5, 0)
    assert "cannot handle this one" in OutboxEvent.objects.get(pk=poison.pk).last_error
