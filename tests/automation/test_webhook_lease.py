"""Webhook claims are short leases fenced by ``attempts``: the sweep takes a lapsed claim at once, and a
sender whose claim was taken over meanwhile records nothing (the new holder records the outcome)."""

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connections
from django.db.models import F
from django.utils import timezone

from automation.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from automation.webhooks.delivery import webhook_deliveries_due, webhook_delivery_attempt
from tests.automation.conftest import latest_event

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def delivery_to(url: str, make_task, **fields) -> WebhookDelivery:
    name = f"e{WebhookEndpoint.objects.count()}"  # names are unique
    endpoint = WebhookEndpoint.objects.create(name=name, url=url, secret=SECRET)
    event = latest_event(make_task())
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=event,
        aggregate_type=event.aggregate_type,
        aggregate_id=event.aggregate_id,
        sequence=event.sequence,
        **fields,
    )


@pytest.mark.django_db
def test_a_lapsed_claim_is_due_at_once_and_a_live_one_is_not(make_task):
    now = timezone.now()
    lapsed = delivery_to(
        "https://example.org/h",
        make_task,
        status="delivering",
        locked_until=now - timedelta(seconds=1),
        next_attempt_at=now - timedelta(seconds=1),
    )
    live = delivery_to(
        "https://example.org/h",
        make_task,
        status="delivering",
        locked_until=now + timedelta(seconds=4),
        next_attempt_at=now + timedelta(seconds=4),
    )
    due = webhook_deliveries_due(grace_seconds=60)  # the grace is for lost messages, not lapsed claims
    assert lapsed.pk in due
    assert live.pk not in due


@pytest.mark.django_db(transaction=True)
def test_a_sender_whose_claim_was_taken_over_records_nothing(make_task, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    taken_over: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            try:  # while the first sender waits: its claim lapses and another sender claims the delivery
                taken_over.append(
                    WebhookDelivery.objects.filter(status="delivering").update(
                        attempts=F("attempts") + 1, locked_until=timezone.now() + timedelta(seconds=5)
                    )
                )
            finally:
                connections.close_all()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        delivery = delivery_to(f"http://127.0.0.1:{server.server_address[1]}/h", make_task)
        result = webhook_delivery_attempt(delivery_id=delivery.pk)
    finally:
        server.shutdown()
        server.server_close()
    assert taken_over == [1]
    assert result.retry_in is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivering", 2)  # the new holder's, untouched
    assert not WebhookAttempt.objects.filter(delivery=delivery).exists()
