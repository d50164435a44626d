"""Effectively-once: a handler's effect and its ledger row commit together; redelivery skips it."""

from outbox.dispatcher import outbox_dispatch
from outbox.models import HandledEvent, OutboxEvent
from outbox.registry import register_handler
from tests.support import effect_probe as effects


def test_each_handler_writes_one_ledger_row_per_event(make_event, effect_handler):
    events = [make_event() for _ in range(5)]
    outbox_dispatch(budget_seconds=10)
    assert HandledEvent.objects.filter(handler=effects.HANDLER_NAME).count() == 5
    assert effects.effect_counts() == (5, 5, 0)
    assert all(
        e.status == OutboxEvent.Status.DISPATCHED
        for e in OutboxEvent.objects.filter(pk__in=[e.pk for e in events])
    )


def test_a_redelivered_event_does_not_repeat_the_effect(make_event, effect_handler):
    event = make_event()
    outbox_dispatch(budget_seconds=10)
    # Redelivery, e.g. a worker that died after handling but before settling the event.
    OutboxEvent.objects.filter(pk=event.pk).update(
        status=OutboxEvent.Status.PENDING, next_attempt_at=event.occurred_at
    )
    report = outbox_dispatch(budget_seconds=10)
    assert report.dispatched == 1
    assert effects.effect_counts() == (1, 1, 0)


def test_an_event_already_in_a_handlers_ledger_skips_only_that_handler(make_event):
    calls = {"a": [], "b": []}
    register_handler("a", lambda event: calls["a"].append(event.id))
    register_handler("b", lambda event: calls["b"].append(event.id))
    event = make_event()
    HandledEvent.objects.create(handler="a", event=event)

    outbox_dispatch(budget_seconds=10)

    assert calls == {"a": [], "b": [event.id]}
    assert set(HandledEvent.objects.filter(event=event).values_list("handler", flat=True)) == {"a", "b"}


def test_event_type_filters_choose_the_handlers(make_event):
    calls = []
    register_handler(
        "only-created", lambda event: calls.append(event.event_type), event_types=["TaskCreated"]
    )
    make_event(event_type="TaskCreated")
    make_event(event_type="TaskStateChanged")
    report = outbox_dispatch(budget_seconds=10)
    assert report.dispatched == 2  # events no handler wants are dispatched too
    assert calls == ["TaskCreated"]
