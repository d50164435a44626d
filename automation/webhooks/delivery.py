"""The webhook delivery log: claim a delivery, attempt it, schedule its retry, find the overdue ones.

One attempt (``webhook_delivery_attempt``) claims the delivery with a compare-and-swap UPDATE, then
sends (``automation.webhooks.transport``) outside any database transaction. Outcome: 2xx delivered;
connection errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter until
``WEBHOOK_MAX_ATTEMPTS`` (then ``dead``); other 4xx and 3xx ``failed``; a refused target ``refused``.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from polaris.backoff import backoff_seconds
from polaris.metrics import WEBHOOK_DELIVERIES

from ..models import WebhookDelivery
from .transport import USER_AGENT, WebhookRefused, target_resolve, webhook_post, webhook_sign

Status = WebhookDelivery.Status


def retry_delay(attempts: int) -> float:
    """Seconds before a delivery's next attempt (``WEBHOOK_RETRY_BASE_SECONDS``, capped at ``…_MAX``)."""
    return backoff_seconds(
        attempts=attempts, base=settings.WEBHOOK_RETRY_BASE_SECONDS, cap=settings.WEBHOOK_RETRY_MAX_SECONDS
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
        response = webhook_post(endpoint.url, address=address, host=host, headers=headers, body=body)
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


def webhook_deliveries_due(*, grace_seconds: float, limit: int = 500) -> list[int]:
    """Deliveries overdue by ``grace_seconds``: pending ones whose message was probably lost, and ones
    whose sender died mid-attempt (lease expired)."""
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    return list(
        WebhookDelivery.objects.filter(
            Q(status=Status.PENDING, next_attempt_at__lte=cutoff)
            | Q(status=Status.DELIVERING, locked_until__lte=cutoff)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def webhook_delivery_reset(*, delivery_id: int) -> None:
    """Make a delivery due again with a fresh attempt budget (the state half of a replay; the caller
    enqueues the attempt after commit)."""
    WebhookDelivery.objects.filter(pk=delivery_id).update(
        status=Status.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        locked_until=None,
        last_error="",
    )
