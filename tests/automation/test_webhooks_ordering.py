"""Ordered deliveries and endpoint health, against a real receiver on loopback.

- A receiver that fails the first attempt of every third delivery still sees each aggregate's events
  in sequence order (a failing delivery holds back only its aggregate's later ones).
- After N consecutive failures the endpoint is disabled with an alert and its deliveries wait as
  paused; re-enabling delivers the backlog in order, nothing twice.
"""

import json
import random
import uuid
from collections import Counter, defaultdict

import pytest

from automation.models import Alert, WebhookDelivery, WebhookEndpoint
from automation.webhooks.endpoints import webhook_endpoint_create, webhook_endpoint_enable
from outbox.models import OutboxEvent
from tests.automation.test_webhooks import delivery_of, loopback_allowed, receiver  # noqa: F401
from tests.automation.webhook_driver import WebhookDriver

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_retries(settings, loopback_allowed):  # noqa: F811
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [0.01] * 6


def stream(aggregates: int, length: int) -> list[OutboxEvent]:
    """``aggregates`` event streams of ``length`` events each (sequence 1..length)."""
    events = []
    for _ in range(aggregates):
        aggregate_id = uuid.uuid4()
        for sequence in range(1, length + 1):
            events.append(
                OutboxEvent.objects.create(
                    event_type="TaskStateChanged",
                    aggregate_type="task",
                    aggregate_id=aggregate_id,
                    sequence=sequence,
                    correlation_id="c",
                    payload={"n": sequence},
                )
            )
    return events


def delivered_bodies(receiver, *, successful_only: bool = True) -> list[dict]:  # noqa: F811
    return [
        json.loads(request["body"])
        for request, status in zip(receiver.requests, receiver.answered, strict=True)
        if status < 300 or not successful_only
    ]


@pytest.fixture
def flaky_receiver(receiver):  # noqa: F811
    """Fails (503) the first attempt of every third distinct delivery."""
    seen: list[str] = []
    receiver.answered = []
    original = receiver.server.RequestHandlerClass.do_POST

    def do_post(handler):
        msg_id = handler.headers["webhook-id"]
        if msg_id not in seen:
            seen.append(msg_id)
            if len(seen) % 3 == 0:
                receiver.statuses.append(503)
        receiver.answered.append(receiver.statuses[0] if receiver.statuses else 200)
        original(handler)

    receiver.server.RequestHandlerClass.do_POST = do_post
    yield receiver
    receiver.server.RequestHandlerClass.do_POST = original


def test_each_aggregate_arrives_in_sequence_order_despite_failures(flaky_receiver, fast_retries):
    endpoint, _ = webhook_endpoint_create(name="crm", url=flaky_receiver.url)
    events = stream(aggregates=4, length=6)
    random.Random(7).shuffle(events)  # deliveries created, and queued, out of order
    driver = WebhookDriver()
    with driver.patch():
        for event in events:
            driver.enqueue((delivery_of(endpoint, event).pk,))
        driver.run()

    assert 503 in flaky_receiver.answered  # the receiver did fail some first attempts
    by_aggregate: dict[str, list[int]] = defaultdict(list)
    for body in delivered_bodies(flaky_receiver):
        by_aggregate[body["aggregate_id"]].append(body["sequence"])
    assert len(by_aggregate) == 4
    assert all(sequences == [1, 2, 3, 4, 5, 6] for sequences in by_aggregate.values())
    # Every request, failed ones included, went out in order: nothing overtook a failing delivery.
    for aggregate_id in by_aggregate:
        tried = [
            b["sequence"]
            for b in delivered_bodies(flaky_receiver, successful_only=False)
            if b["aggregate_id"] == aggregate_id
        ]
        assert tried == sorted(tried)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    failed_first = WebhookDelivery.objects.filter(attempts=2).count()
    assert failed_first == 24 // 3


def test_an_unordered_endpoint_lets_later_events_overtake(flaky_receiver, fast_retries):
    """The control: without ordering the same failures reorder the stream (so the test above can fail)."""
    endpoint, _ = webhook_endpoint_create(name="crm", url=flaky_receiver.url, ordered=False)
    events = stream(aggregates=1, length=6)
    driver = WebhookDriver()
    with driver.patch():
        for event in events:
            driver.enqueue((delivery_of(endpoint, event).pk,))
        driver.run()
    sequences = [b["sequence"] for b in delivered_bodies(flaky_receiver)]
    assert sorted(sequences) == [1, 2, 3, 4, 5, 6]
    assert sequences != sorted(sequences)


def test_a_failing_endpoint_is_disabled_with_an_alert_and_resumes_in_order(
    receiver,  # noqa: F811
    fast_retries,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    receiver.statuses.extend([500] * 3)
    endpoint, _ = webhook_endpoint_create(name="crm", url=receiver.url)
    events = stream(aggregates=2, length=3)
    driver = WebhookDriver()
    with driver.patch():
        for event in events:
            driver.enqueue((delivery_of(endpoint, event).pk,))
        driver.run()

    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.consecutive_failures) == (False, 3)
    assert endpoint.disabled_at is not None
    [alert] = Alert.objects.all()
    assert (alert.severity, "crm" in alert.message) == ("critical", True)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"paused"}
    assert len(receiver.requests) == 3  # nothing more was tried while disabled

    with driver.patch():
        with django_capture_on_commit_callbacks(execute=True):
            webhook_endpoint_enable(endpoint_id=endpoint.pk)
        driver.run()

    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.consecutive_failures, endpoint.disabled_at) == (True, 0, None)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    successful = [json.loads(r["body"]) for r in receiver.requests[3:]]
    assert Counter(b["id"] for b in successful) == Counter(str(e.id) for e in events)  # nothing twice
    for aggregate_id in {str(e.aggregate_id) for e in events}:
        assert [b["sequence"] for b in successful if b["aggregate_id"] == aggregate_id] == [1, 2, 3]
    assert Alert.objects.count() == 1


def test_events_for_a_disabled_endpoint_wait_as_paused(make_task, receiver, loopback_allowed):  # noqa: F811
    from automation.engine import automation_handle_event
    from automation.services import trigger_create
    from tests.automation.conftest import latest_event

    endpoint, _ = webhook_endpoint_create(name="crm", url=receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_at="2026-01-01T00:00Z")
    trigger_create(name="hook", event_type="TaskCreated", actions=[{"type": "webhook", "params": {}}])
    automation_handle_event(latest_event(make_task()))
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["paused"]
