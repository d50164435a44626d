"""Retention: old ledger rows of dispatched events go, dead events keep theirs; the history stays
unless an operator sets a retention; webhook attempts of finished deliveries go after theirs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automation.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from automation.tasks import webhook_attempts_trim_task
from outbox.models import HandledEvent, OutboxEvent
from outbox.tasks import outbox_retention_trim_task

pytestmark = pytest.mark.django_db
LONG_AGO = timezone.now() - timedelta(days=40)


def test_the_ledger_of_old_dispatched_events_is_trimmed(make_event):
    old = make_event(status="dispatched", dispatched_at=LONG_AGO, occurred_at=LONG_AGO)
    recent = make_event(status="dispatched", dispatched_at=timezone.now())
    dead = make_event(status="dead", occurred_at=LONG_AGO)
    for event in (old, recent, dead):
        HandledEvent.objects.create(handler="h", event=event)
    assert outbox_retention_trim_task() == {"ledger": 1, "events": 0}
    assert set(HandledEvent.objects.values_list("event_id", flat=True)) == {recent.id, dead.id}
    assert OutboxEvent.objects.count() == 3  # the history stays by default


def test_an_operator_retention_drops_only_old_dispatched_events(make_event, settings):
    settings.OUTBOX_EVENT_RETENTION_DAYS = 30
    old = make_event(status="dispatched", dispatched_at=LONG_AGO, occurred_at=LONG_AGO)
    make_event(status="dead", occurred_at=LONG_AGO)
    make_event(status="pending", occurred_at=LONG_AGO)
    make_event(status="dispatched", dispatched_at=timezone.now())
    assert outbox_retention_trim_task()["events"] == 1
    assert not OutboxEvent.objects.filter(pk=old.pk).exists()
    assert OutboxEvent.objects.count() == 3


def test_attempts_of_finished_deliveries_are_trimmed(make_event):
    endpoint = WebhookEndpoint.objects.create(name="e", url="https://example.org/", secret="whsec_AAAA")
    done = WebhookDelivery.objects.create(endpoint=endpoint, event=make_event(), status="delivered")
    waiting = WebhookDelivery.objects.create(endpoint=endpoint, event=make_event(), status="pending")
    for delivery in (done, waiting):
        WebhookAttempt.objects.create(delivery=delivery, number=1, started_at=LONG_AGO, outcome="retrying")
    WebhookAttempt.objects.create(delivery=done, number=2, outcome="delivered")
    webhook_attempts_trim_task()
    assert sorted(WebhookAttempt.objects.values_list("delivery_id", "number")) == [
        (done.pk, 2),
        (waiting.pk, 1),
    ]
