"""Receivers that cannot hold a worker: one deadline per attempt, a capped read, the test ping under the
same rules; the SSRF guard's IPv6 unwrapping, the port allow-list and malformed hosts (issue #28).

The hostile receivers are real HTTP servers on 127.0.0.1 in a thread (loopback allow-listed as in
``test_webhooks``): one trickles an 8 MB answer over 8 s, one sends a huge body at once, one trickles
its status line and headers byte by byte."""

import socket
import threading
import time

import pytest
from rest_framework.test import APIClient

from automation.models import WebhookEndpoint
from automation.webhooks.delivery import webhook_delivery_attempt
from automation.webhooks.transport import RESPONSE_MAX_BYTES, address_is_public, url_check_syntax
from tests.automation.test_webhooks import make_delivery

pytestmark = pytest.mark.django_db
DEADLINE = 1.5


class HostileReceiver:
    """A raw socket server in a thread answering every connection with ``behaviour(conn)``."""

    def __init__(self, behaviour) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(
                next(
                    (
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    b"0",
                )
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.behaviour(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def trickle_8mb_over_8s(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8388608\r\nContent-Type: text/plain\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(128):  # 128 x 64 KB = 8 MB, one chunk every 62.5 ms
        if stop.is_set():
            return
        conn.sendall(chunk)
        time.sleep(8 / 128)


def trickle_headers(conn, stop):
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 400:
        if stop.is_set():
            return
        conn.sendall(bytes([byte]))
        time.sleep(0.02)  # 20 s for the headers alone


def huge_body(conn, stop):
    conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 104857600\r\n\r\n")
    chunk = b"y" * 1048576
    for _ in range(100):  # 100 MB as fast as the socket takes it
        if stop.is_set():
            return
        conn.sendall(chunk)


@pytest.fixture
def deadline(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_TIMEOUT_SECONDS = DEADLINE
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [2.0]


@pytest.fixture
def hostile(request):
    servers = []

    def start(behaviour):
        server = HostileReceiver(behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize("behaviour", [trickle_8mb_over_8s, trickle_headers])
def test_a_slow_trickle_ends_at_the_deadline(make_task, deadline, hostile, behaviour):
    server = hostile(behaviour)
    delivery = make_delivery(make_task, server.url)
    started = time.monotonic()
    webhook_delivery_attempt(delivery_id=delivery.pk)
    elapsed = time.monotonic() - started
    delivery.refresh_from_db()
    if behaviour is trickle_8mb_over_8s:  # the status came in time; only an excerpt of the body is read
        assert delivery.response_status == 200
        assert elapsed < DEADLINE + 1.0
    else:  # the headers never finished: the deadline ended it, a retryable failure
        assert delivery.status == "pending"
        assert "deadline" in delivery.last_error or "Timeout" in delivery.last_error
        assert DEADLINE - 0.1 <= elapsed < DEADLINE + 1.0


def test_a_huge_body_is_read_only_up_to_the_cap(make_task, deadline, hostile):
    server = hostile(huge_body)
    delivery = make_delivery(make_task, server.url)
    started = time.monotonic()
    webhook_delivery_attempt(delivery_id=delivery.pk)
    assert time.monotonic() - started < DEADLINE + 1.0
    delivery.refresh_from_db()
    assert delivery.response_status == 500
    attempt = delivery.attempt_log.get()
    assert 0 < len(attempt.response_excerpt) <= RESPONSE_MAX_BYTES


def test_the_test_ping_is_under_the_same_deadline(admin_user, deadline, hostile):
    server = hostile(trickle_headers)
    api = APIClient()
    api.force_authenticate(admin_user)
    created = api.post(
        "/api/workflow/webhook-endpoints", {"name": "slow", "url": server.url}, format="json"
    ).data
    started = time.monotonic()
    response = api.post(f"/api/workflow/webhook-endpoints/{created['id']}/test")
    assert time.monotonic() - started < DEADLINE + 1.0
    assert response.status_code == 200
    assert response.data["delivered"] is False
    assert response.data["error"]


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
        "2001:0:5db8:d822:8000:63bf:a247:27dd",  # Teredo, public inside: still refused (Teredo is not global)
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::5db8:d822",  # local-use NAT64: never public
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::127.0.0.1",  # IPv4-compatible
    ],
)
def test_ipv6_forms_carrying_a_private_ipv4_are_refused(address):
    assert address_is_public(address) is False


@pytest.mark.parametrize("address", ["2002:5db8:d822::1", "64:ff9b::5db8:d822", "::ffff:93.184.216.34"])
def test_ipv6_forms_carrying_a_public_ipv4_are_judged_by_it(address):
    assert address_is_public(address) is True


def test_a_6to4_loopback_url_is_refused_at_delivery(make_task, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    delivery = make_delivery(make_task, "http://[2002:7f00:1::1]/")
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "refused"
    assert "non-public" in delivery.last_error


@pytest.mark.parametrize(
    "url",
    [
        "https://.bad_host_/x",
        "https://bad_host/x",
        "https://-x.example/",
        "https://a..example/",
        "http://" + "a" * 64 + ".example/",
    ],
)
def test_malformed_hosts_are_refused(url):
    assert url_check_syntax(url)


def test_ports_outside_the_allow_list_are_refused_unless_the_host_is_allow_listed(settings):
    settings.WEBHOOK_ALLOWED_PORTS = ["80", "443"]
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.internal"]
    assert url_check_syntax("https://crm.example.org/h") is None
    assert url_check_syntax("http://crm.example.org:80/h") is None
    assert "Port 6379" in url_check_syntax("http://crm.example.org:6379/h")
    assert url_check_syntax("http://hooks.internal:8080/h") is None
    settings.WEBHOOK_ALLOWED_PORTS = ["*"]
    assert url_check_syntax("http://crm.example.org:6379/h") is None


@pytest.mark.parametrize("url", ["https://.bad_host_/x", "https://crm.example.org:22/x"])
def test_create_and_update_refuse_bad_hosts_and_ports_with_a_400(admin_user, settings, url):
    settings.WEBHOOK_ALLOWED_PORTS = ["80", "443"]
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post("/api/workflow/webhook-endpoints", {"name": "bad", "url": url}, format="json")
    assert response.status_code == 400
    assert response.data["error_code"] == "VALIDATION_ERROR"
    assert "url" in response.data["details"]
    ok = api.post(
        "/api/workflow/webhook-endpoints", {"name": "ok", "url": "https://crm.example.org/h"}, format="json"
    )
    patched = api.patch(f"/api/workflow/webhook-endpoints/{ok.data['id']}", {"url": url}, format="json")
    assert patched.status_code == 400
    assert "url" in patched.data["details"]
    assert WebhookEndpoint.objects.get().url == "https://crm.example.org/h"
