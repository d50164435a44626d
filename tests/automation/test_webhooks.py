"""Webhook delivery against a real HTTP server on loopback: signature, retries, no-retry, SSRF guard.

Every request is verified as a receiver would, with the ``standardwebhooks`` library."""

import json
import random
import shutil
import socket
import ssl
import subprocess
import threading
from collections import deque
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
import time_machine
from django.utils import timezone
from prometheus_client import REGISTRY
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from automation.models import WebhookDelivery, WebhookEndpoint
from automation.webhooks.delivery import retry_delay, webhook_delivery_attempt
from automation.webhooks.endpoints import webhook_delivery_redeliver
from automation.webhooks.transport import address_is_public
from polaris import backoff
from tests.automation.conftest import latest_event

pytestmark = pytest.mark.django_db

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """A real HTTP server in a thread: records each request, answers with the next queued status."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: deque[int] = deque()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                status = receiver.statuses.popleft() if receiver.statuses else 200
                self.send_response(status)
                if status in (301, 302):
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/polaris"


@pytest.fixture
def receiver():
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def loopback_allowed(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 3
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [2.0, 2.0]  # three attempts


def delivery_of(endpoint: WebhookEndpoint, event, **fields) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event=event,
        aggregate_type=event.aggregate_type,
        aggregate_id=event.aggregate_id,
        sequence=event.sequence,
        **fields,
    )


def make_delivery(make_task, url: str) -> WebhookDelivery:
    endpoint = WebhookEndpoint.objects.create(name="receiver", url=url, secret=SECRET)
    return delivery_of(endpoint, latest_event(make_task()))


def verify(request: dict, secret: str = SECRET) -> bool:
    """What a receiver does: the Standard Webhooks library's check (signature and timestamp)."""
    try:
        Webhook(secret).verify(request["body"], request["headers"])
    except WebhookVerificationError:
        return False
    return True


def attempt_when_due(delivery: WebhookDelivery):
    """Run the next attempt at the time the backoff scheduled it."""
    delivery.refresh_from_db()
    with time_machine.travel(delivery.next_attempt_at + timedelta(milliseconds=10), tick=True):
        return webhook_delivery_attempt(delivery_id=delivery.pk)


def counted(status: str) -> float:
    return REGISTRY.get_sample_value("webhook_deliveries_total", {"status": status}) or 0


def test_delivery_is_signed_and_carries_the_envelope(make_task, receiver, loopback_allowed):
    delivery = make_delivery(make_task, receiver.url)
    before = counted("delivered")
    assert webhook_delivery_attempt(delivery_id=delivery.pk).retry_in is None

    [request] = receiver.requests
    assert verify(request)
    envelope = json.loads(request["body"])
    assert envelope == json.loads(json.dumps(delivery.event.envelope()))
    assert request["headers"]["webhook-id"] == str(delivery.event_id)
    assert request["headers"]["webhook-signature"].startswith("v1,")
    assert abs(int(request["headers"]["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["path"] == "/hooks/polaris"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    assert delivery.response_ms > 0
    assert counted("delivered") == before + 1


def test_a_tampered_body_does_not_verify(make_task, receiver, loopback_allowed):
    webhook_delivery_attempt(delivery_id=make_delivery(make_task, receiver.url).pk)
    [request] = receiver.requests
    assert not verify({**request, "body": request["body"].replace(b"intake", b"intakE")})


def test_a_500_then_200_is_retried_with_backoff_and_delivered_once(make_task, receiver, loopback_allowed):
    receiver.statuses.extend([500])
    delivery = make_delivery(make_task, receiver.url)

    delay = webhook_delivery_attempt(delivery_id=delivery.pk).retry_in
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert (delivery.attempts, delivery.response_status, delivery.last_error) == (1, 500, "HTTP 500")
    assert 1.8 <= delay <= 2.2  # the schedule's first entry, ±10 %
    assert (
        0 < webhook_delivery_attempt(delivery_id=delivery.pk).retry_in <= delay
    )  # not yet due: come back later
    assert len(receiver.requests) == 1

    assert attempt_when_due(delivery).retry_in is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 2, 200)
    assert len(receiver.requests) == 2
    assert receiver.requests[0]["body"] == receiver.requests[1]["body"]
    assert webhook_delivery_attempt(delivery_id=delivery.pk).retry_in is None  # delivered: never sent again
    assert len(receiver.requests) == 2
    log = list(delivery.attempt_log.values_list("number", "outcome", "response_status"))
    assert log == [(1, "retrying", 500), (2, "delivered", 200)]


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_5xx_are_retried_until_dead(make_task, receiver, loopback_allowed, status):
    receiver.statuses.extend([status] * 5)
    delivery = make_delivery(make_task, receiver.url)
    assert webhook_delivery_attempt(delivery_id=delivery.pk).retry_in is not None
    assert attempt_when_due(delivery).retry_in is not None
    assert attempt_when_due(delivery).retry_in is None  # a schedule of two retries: three attempts
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 3)
    assert len(receiver.requests) == 3


@pytest.mark.parametrize(("status", "expected"), [(400, "failed"), (404, "failed"), (302, "failed")])
def test_other_4xx_and_redirects_are_not_retried(make_task, receiver, loopback_allowed, status, expected):
    receiver.statuses.append(status)
    delivery = make_delivery(make_task, receiver.url)
    assert webhook_delivery_attempt(delivery_id=delivery.pk).retry_in is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (expected, 1, status)
    assert len(receiver.requests) == 1  # a redirect is not followed


def test_connection_errors_are_retried(make_task, loopback_allowed):
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    delivery = make_delivery(make_task, f"http://127.0.0.1:{port}/")
    assert webhook_delivery_attempt(delivery_id=delivery.pk).retry_in is not None
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert "ConnectError" in delivery.last_error


def test_loopback_is_refused_when_not_allow_listed(make_task, receiver, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    before = counted("refused")
    delivery = make_delivery(make_task, receiver.url)
    assert webhook_delivery_attempt(delivery_id=delivery.pk).retry_in is None
    delivery.refresh_from_db()
    assert delivery.status == "refused"
    assert "non-public address" in delivery.last_error
    assert receiver.requests == []
    assert counted("refused") == before + 1


@pytest.mark.parametrize("url", ["http://10.1.2.3/hook", "http://192.168.0.10/", "http://localhost:8000/"])
def test_private_targets_are_refused_without_connecting(make_task, settings, url):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    delivery = make_delivery(make_task, url)
    assert webhook_delivery_attempt(delivery_id=delivery.pk).retry_in is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.response_status) == ("refused", None)


def test_the_checked_address_is_the_one_connected_to(make_task, receiver, settings, monkeypatch):
    """The name is resolved once; the request goes to that address with the original Host header."""
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.example.test"]
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def fake_getaddrinfo(host, *args, **kwargs):
        if host != "hooks.example.test":
            return real_getaddrinfo(host, *args, **kwargs)
        lookups.append(host)
        assert len(lookups) == 1, "the name was resolved twice"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    delivery = make_delivery(make_task, f"http://hooks.example.test:{receiver.port}/in")
    assert webhook_delivery_attempt(delivery_id=delivery.pk).retry_in is None  # a second lookup would raise
    [request] = receiver.requests
    assert request["headers"]["Host"] == f"hooks.example.test:{receiver.port}"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("fe80::1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),  # noqa: S104
        ("240.0.0.1", False),
        ("100.64.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("fc00::1", False),
    ],
)
def test_address_classification(address, public):
    assert address_is_public(address) is public


def test_redelivery_resends_a_finished_delivery_and_keeps_its_attempts(
    make_task, receiver, loopback_allowed, django_capture_on_commit_callbacks
):
    receiver.statuses.append(400)
    delivery = make_delivery(make_task, receiver.url)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    with (
        mock.patch("automation.tasks.webhook_deliver_task.apply_async") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        webhook_delivery_redeliver(delivery_id=delivery.pk)
    send.assert_called_once_with((delivery.pk,), retry=False)
    assert webhook_delivery_attempt(delivery_id=delivery.pk).retry_in is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert list(delivery.attempt_log.values_list("number", "outcome")) == [(1, "failed"), (2, "delivered")]
    assert len(receiver.requests) == 2


def test_the_sweep_finds_lost_and_abandoned_deliveries(make_task):
    from automation.webhooks.delivery import webhook_deliveries_due

    # One endpoint per delivery: an event reaches an endpoint once (unique (endpoint, event)).
    e1, e2, e3, e4 = (
        WebhookEndpoint.objects.create(name=f"e{n}", url="https://example.org/h", secret=SECRET)
        for n in range(4)
    )
    event = latest_event(make_task())
    long_ago = timezone.now() - timedelta(minutes=5)
    lost = WebhookDelivery.objects.create(endpoint=e1, event=event, next_attempt_at=long_ago)
    abandoned = WebhookDelivery.objects.create(
        endpoint=e2, event=event, status="delivering", locked_until=long_ago
    )
    WebhookDelivery.objects.create(endpoint=e3, event=event)  # just queued
    WebhookDelivery.objects.create(endpoint=e4, event=event, status="delivered", next_attempt_at=long_ago)
    assert sorted(webhook_deliveries_due(grace_seconds=60)) == sorted([lost.pk, abandoned.pk])


def _self_signed(tmp_path, name: str):
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
@pytest.mark.parametrize(
    ("certified_name", "delivered"), [("hooks.example.test", True), ("other.example", False)]
)
def test_https_goes_to_the_checked_address_and_verifies_the_original_name(
    make_task, receiver, settings, monkeypatch, tmp_path, certified_name, delivered
):
    """TLS to the resolved address still sends SNI and checks the certificate for the URL's host name."""
    cert, key = _self_signed(tmp_path, certified_name)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    receiver.server.socket = server_context.wrap_socket(receiver.server.socket, server_side=True)
    client_context = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr("automation.webhooks.transport._tls_context", lambda: client_context)
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, *args, **kwargs):
        if host == "hooks.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port))]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.example.test"]
    delivery = make_delivery(make_task, f"https://hooks.example.test:{receiver.port}/tls")

    webhook_delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    if delivered:
        assert delivery.status == "delivered"
        assert receiver.requests[0]["headers"]["Host"] == f"hooks.example.test:{receiver.port}"
    else:
        assert delivery.status == "pending"  # retried: a TLS failure may be a transient misconfiguration
        assert "CERTIFICATE_VERIFY_FAILED" in delivery.last_error
        assert receiver.requests == []


def test_the_retry_schedule_is_followed_with_the_shared_jitter_within_its_bounds(settings, monkeypatch):
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [5, 300, 36000]
    for attempts, nominal in enumerate(settings.WEBHOOK_RETRY_SCHEDULE_SECONDS, start=1):
        delays = [retry_delay(attempts) for _ in range(200)]
        assert all(0.9 * nominal <= delay <= 1.1 * nominal for delay in delays), (attempts, nominal)
        assert len(set(delays)) > 1  # jittered
    assert retry_delay(4) is None  # the schedule is spent: dead
    # The jitter is polaris.backoff's (one rule): its random source decides the webhook's delays.
    monkeypatch.setattr(backoff, "random", random.Random(7))
    assert retry_delay(2) == 300 * random.Random(7).uniform(0.9, 1.1)
