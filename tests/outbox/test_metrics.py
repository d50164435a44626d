"""Dispatch metrics: processed events by type and outcome, and the commit → handled lag histogram."""

from datetime import timedelta

from django.utils import timezone

from outbox.dispatcher import outbox_dispatch
from outbox.metrics import OUTBOX_DISPATCH_LAG, OUTBOX_EVENTS_PROCESSED
from outbox.registry import register_handler


def processed(event_type: str, status: str) -> float:
    return OUTBOX_EVENTS_PROCESSED.labels(event_type, status)._value.get()


def lag_count() -> float:
    return next(
        sample.value
        for metric in OUTBOX_DISPATCH_LAG.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
    )


def test_outcomes_and_lag_are_counted(make_event):
    def fail_on_poison(event):
        if event.event_type == "MetricPoisoned":
            raise RuntimeError("no")

    register_handler("metric-probe", fail_on_poison)
    before = (processed("MetricProbed", "dispatched"), processed("MetricPoisoned", "retried"), lag_count())
    make_event(event_type="MetricProbed", occurred_at=timezone.now() - timedelta(seconds=2))
    make_event(event_type="MetricProbed")
    make_event(event_type="MetricPoisoned")

    outbox_dispatch(budget_seconds=10)

    assert processed("MetricProbed", "dispatched") == before[0] + 2
    assert processed("MetricPoisoned", "retried") == before[1] + 1
    assert lag_count() == before[2] + 2  # only handled events have a lag
