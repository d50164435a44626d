"""Chaos: short webhook leases with a heartbeat, on real worker and beat processes.

A worker delivering a webhook to a slow receiver keeps its claim while it waits (the heartbeat renews the
short lease, nothing re-enqueues it); SIGKILLed mid-request, its delivery is due again within the lease,
beat's sweep re-enqueues it, another worker delivers it, and exactly one attempt is recorded as delivered.
The receiver sees the message twice with the same ``webhook-id`` (at-least-once: the first POST reached it
before its sender died), both correctly signed."""

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from automation.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from automation.tasks import webhook_deliver_task
from automation.webhooks.delivery import webhook_deliveries_due
from polaris.celery import app as celery_app
from tests.automation.conftest import latest_event
from tests.outbox.workers import beat, kill_hard, start_worker, worker
from tests.support.processes import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

LEASE = 2.0
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class SlowFirstReceiver:
    """A real HTTP server: holds the first request open until released, answers the others 200 at once."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                if len(receiver.requests) == 1:
                    receiver.release.wait(timeout=30)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # its sender is gone

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = SlowFirstReceiver()
    yield server
    server.close()


def test_a_worker_killed_mid_delivery_is_redelivered_within_the_lease_and_recorded_once(
    receiver, make_task, tmp_path
):
    env = {
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOK_TIMEOUT_SECONDS": "30",  # the held request must not time out: the kill ends it
        "WEBHOOK_LEASE_SECONDS": str(LEASE),
        "WEBHOOK_SWEEP_INTERVAL_SECONDS": "1",
    }
    endpoint = WebhookEndpoint.objects.create(name="slow", url=receiver.url, secret=SECRET)
    event = latest_event(make_task())
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=event,
        aggregate_type=event.aggregate_type,
        aggregate_id=event.aggregate_id,
        sequence=event.sequence,
    )
    celery_app.control.purge()
    victim = start_worker("webhook-victim", **env)
    try:
        webhook_deliver_task.delay(delivery.pk)
        wait_until(lambda: receiver.requests, timeout=30)
        # A slow but healthy delivery: held for twice the lease, it keeps its claim (renewed by the
        # heartbeat), and the sweep does not consider it due.
        time.sleep(2 * LEASE)
        delivery.refresh_from_db()
        assert delivery.status == "delivering"
        assert delivery.locked_until > timezone.now()
        assert delivery.pk not in webhook_deliveries_due(grace_seconds=60)
        kill_hard(victim)  # mid-request: the receiver has the POST, nobody records the outcome
        killed_at = timezone.now()
    finally:
        victim.stop()
    delivery.refresh_from_db()
    assert delivery.status == "delivering"
    assert delivery.locked_until <= killed_at + timedelta(seconds=LEASE + 0.5)  # due again within the lease

    with worker("webhook-survivor", **env), beat(tmp_path, interval=5, **env):
        wait_until(
            lambda: WebhookDelivery.objects.filter(pk=delivery.pk, status="delivered").exists(), timeout=30
        )
    healed = timezone.now() - killed_at
    assert healed < timedelta(seconds=20), healed  # lease + sweep + worker and beat start-up

    delivery.refresh_from_db()
    assert delivery.attempts == 2  # the lost attempt counted, then the one that delivered
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "outcome"))
    assert attempts == [(2, "delivered")]  # exactly one recorded attempt, and it succeeded
    assert len(receiver.requests) == 2
    ids = {
        value
        for request in receiver.requests
        for name, value in request["headers"].items()
        if name.lower() == "webhook-id"
    }
    assert ids == {str(event.id)}  # the same message id both times: the receiver can deduplicate
    for request in receiver.requests:
        Webhook(SECRET).verify(request["body"], request["headers"])
