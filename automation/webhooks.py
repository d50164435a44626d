"""Signed webhook delivery with an SSRF guard.

One attempt (``webhook_delivery_attempt``) claims the delivery with a compare-and-swap UPDATE, then
sends outside any database transaction:

- body: the event envelope as compact JSON; headers ``X-Polaris-Event-Id``, ``X-Polaris-Timestamp``
  (Unix seconds) and ``X-Polaris-Signature`` = hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with
  the endpoint's secret;
- SSRF guard: the host is resolved once and every address must be public (not loopback, private,
  link-local, multicast, reserved, unspecified or otherwise non-global) unless the host is in
  ``WEBHOOK_ALLOWED_HOSTS``. The request then goes to the *checked address* (``Host`` header and TLS
  SNI/certificate check keep the original name), so a second DNS answer cannot redirect it
  (DNS rebinding). Redirects are never followed: a 3xx is a permanent failure;
- outcome: 2xx delivered; connection errors, timeouts, 429 and 5xx are retried with exponential
  backoff and jitter until ``WEBHOOK_MAX_ATTEMPTS`` (then ``dead``); other 4xx and 3xx ``failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import socket
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from polaris.metrics import WEBHOOK_DELIVERIES

from .models import WebhookDelivery

Status = WebhookDelivery.Status
USER_AGENT = "Polaris-Webhooks/1"


class WebhookRefused(Exception):
    """The target is not allowed (SSRF guard or a malformed URL); never retried."""


def webhook_sign(*, secret: str, timestamp: str, body: str) -> str:
    """Hex HMAC-SHA256 of ``timestamp + "." + body`` (what receivers recompute to verify)."""
    return hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()


def url_check_syntax(url: str) -> str | None:
    """A problem with the URL's form, or ``None``. Addresses are checked at delivery time."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        return f"Not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "Only http and https URLs are supported."
    if not parts.hostname:
        return "The URL needs a host."
    if parts.username or parts.password:
        return "Credentials in the URL are not allowed; authenticate with the signature."
    return None


def address_is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    refused = (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )
    return not refused


def host_is_allow_listed(host: str) -> bool:
    return host.lower().rstrip(".") in {h.lower().rstrip(".") for h in settings.WEBHOOK_ALLOWED_HOSTS}


def target_resolve(url: str) -> tuple[str, int, str]:
    """(host, port, address to connect to) for ``url``, after the SSRF guard.

    Raises ``WebhookRefused`` for a refused target and ``OSError`` when the name does not resolve
    (retried: DNS failures are often transient).
    """
    problem = url_check_syntax(url)
    if problem:
        raise WebhookRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OSError(f"{host} did not resolve")
    if not host_is_allow_listed(host):
        blocked = [a for a in addresses if not address_is_public(a)]
        if blocked:
            raise WebhookRefused(
                f"Refused: {host} resolves to a non-public address ({', '.join(blocked)}); "
                "add the host to WEBHOOK_ALLOWED_HOSTS if this is intended."
            )
    return host, port, addresses[0]


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, then scaled by a random 50-100 %."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    delay = min(settings.WEBHOOK_RETRY_MAX_SECONDS, base * (2 ** max(attempts - 1, 0)))
    return delay * random.uniform(0.5, 1.0)


def _send(url: str, *, address: str, host: str, headers: dict[str, str], body: str) -> httpx.Response:
    parts = urlsplit(url)
    ip = ipaddress.ip_address(address)
    netloc = f"[{address}]" if ip.version == 6 else address
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    target = parts._replace(netloc=netloc).geturl()
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS)
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        return client.post(
            target, content=body.encode(), headers={**headers, "Host": host_header}, extensions=extensions
        )


def _claim(delivery_id: int) -> bool:
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 2 + 30)
    due = Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Status.DELIVERING, locked_until__lt=now
    )
    claimed = WebhookDelivery.objects.filter(due, pk=delivery_id).update(
        status=Status.DELIVERING, locked_until=lease, attempts=F("attempts") + 1
    )
    return claimed == 1


def webhook_delivery_attempt(*, delivery_id: int) -> float | None:
    """Try to deliver once. Returns the seconds until the next attempt should run, or ``None`` when
    there is nothing more to do (delivered, failed, refused, dead, or claimed by someone else)."""
    if not _claim(delivery_id):
        pending = WebhookDelivery.objects.filter(pk=delivery_id, status=Status.PENDING).first()
        if pending is not None:  # woke up early (clock skew): come back when it is due
            return max((pending.next_attempt_at - timezone.now()).total_seconds(), 0.05)
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    body = json.dumps(event.envelope(), separators=(",", ":"), sort_keys=True, default=str)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Polaris-Event-Id": str(event.id),
        "X-Polaris-Timestamp": timestamp,
        "X-Polaris-Signature": webhook_sign(secret=endpoint.secret, timestamp=timestamp, body=body),
    }
    started = time.perf_counter()
    response_status: int | None = None
    retryable = refused = False
    error = ""
    try:
        if not endpoint.enabled:
            raise WebhookRefused("The endpoint is disabled.")
        host, _port, address = target_resolve(endpoint.url)
        response = _send(endpoint.url, address=address, host=host, headers=headers, body=body)
        response_status = response.status_code
        if 200 <= response_status < 300:
            pass
        elif response_status == 429 or response_status >= 500:
            retryable, error = True, f"HTTP {response_status}"
        else:
            error = f"HTTP {response_status} (not retried)"
            if 300 <= response_status < 400:
                error = f"HTTP {response_status}: redirects are not followed"
    except WebhookRefused as exc:
        refused, error = True, str(exc)
    except (httpx.TransportError, OSError) as exc:
        retryable, error = True, f"{type(exc).__name__}: {exc}"
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)

    delay: float | None = None
    fields: dict[str, Any] = {
        "response_status": response_status,
        "response_ms": elapsed_ms,
        "last_error": error[:2000],
        "locked_until": None,
    }
    if not error:
        fields.update(status=Status.DELIVERED, delivered_at=timezone.now())
        metric = "delivered"
    elif retryable and delivery.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
        delay = retry_delay(delivery.attempts)
        fields.update(status=Status.PENDING, next_attempt_at=timezone.now() + timedelta(seconds=delay))
        metric = "retrying"
    elif retryable:
        fields["status"] = Status.DEAD
        metric = "dead"
    elif refused:
        fields["status"] = Status.REFUSED
        metric = "refused"
    else:
        fields["status"] = Status.FAILED
        metric = "failed"
    WebhookDelivery.objects.filter(pk=delivery_id, status=Status.DELIVERING).update(**fields)
    WEBHOOK_DELIVERIES.labels(metric).inc()
    return delay
