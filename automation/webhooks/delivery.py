"""The webhook delivery log: claim a delivery, attempt it, record the attempt, schedule its retry.

One attempt (``webhook_delivery_attempt``) claims the delivery with a compare-and-swap UPDATE, then
sends (``automation.webhooks.transport``) outside any database transaction, then records the attempt
(a ``WebhookAttempt`` row), the delivery's new state and the endpoint's health in one transaction.

- **Lease**: a claim lasts ``WEBHOOK_LEASE_SECONDS`` (5 s); while the POST is in flight a heartbeat
  (``polaris.leases``) renews it every ``WEBHOOK_HEARTBEAT_SECONDS``, fenced by ``attempts``. A killed
  sender stops renewing: its delivery is due again within the lease and the sweep (every
  ``WEBHOOK_SWEEP_INTERVAL_SECONDS``) re-enqueues it. The outcome is recorded only while the claim is
  still the sender's, so each attempt number is recorded at most once and a delivery is ``delivered``
  by exactly one attempt. The receiver may get a message twice (sent, then the sender died before
  recording it): the same ``webhook-id`` both times, for it to deduplicate (at-least-once).

- **Order**: on an ``ordered`` endpoint a delivery is claimable only when no earlier delivery (lower
  ``sequence``) of the same aggregate to the same endpoint is undone (pending, delivering, paused), as
  dispatch does per aggregate. A delivery that finishes wakes the next one of its aggregate.
- **Outcome**: 2xx delivered; connection errors, timeouts, 429 and 5xx retried on
  ``WEBHOOK_RETRY_SCHEDULE_SECONDS`` (one entry per retry, ±10 % jitter), then ``dead``; other 4xx and
  3xx ``failed``; a refused target ``refused``. ``dead``, ``failed`` and ``refused`` stop holding back.
- **Health**: every failed attempt counts towards ``WEBHOOK_DISABLE_AFTER_FAILURES`` consecutive
  failures (a success resets the count); at the threshold the endpoint is disabled, an alert is raised
  and its undone deliveries become ``paused`` (``automation.webhooks.endpoints`` resumes them).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from automation.metrics import WEBHOOK_DELIVERIES
from polaris.backoff import schedule_seconds
from polaris.leases import Lease, LeaseHeartbeat, lease_until

from ..alerts import alert_raise
from ..models import UNDONE_DELIVERY_STATUSES, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .transport import WebhookRefused, target_resolve, webhook_headers, webhook_post

Status = WebhookDelivery.Status
logger = logging.getLogger(__name__)
EXCERPT_CHARS = 500


@dataclass
class AttemptResult:
    """What the caller (a Celery task) should do next: retry this delivery in ``retry_in`` seconds,
    and/or queue the deliveries in ``wake`` (the next of the aggregate, now free to go)."""

    retry_in: float | None = None
    wake: list[int] = field(default_factory=list)


def retry_delay(round_attempts: int) -> float | None:
    """Seconds before the next attempt after ``round_attempts`` failed ones in this round (creation or
    the last redelivery): ``WEBHOOK_RETRY_SCHEDULE_SECONDS`` with the project's one jitter rule
    (``polaris.backoff``, ±10 %), or ``None`` when the schedule is exhausted."""
    return schedule_seconds(attempts=round_attempts, schedule=settings.WEBHOOK_RETRY_SCHEDULE_SECONDS)


def earlier_undone() -> Exists:
    """An earlier undone delivery of the same aggregate to the same endpoint (the ordering rule)."""
    return Exists(
        WebhookDelivery.objects.filter(
            endpoint_id=OuterRef("endpoint_id"),
            aggregate_type=OuterRef("aggregate_type"),
            aggregate_id=OuterRef("aggregate_id"),
            sequence__lt=OuterRef("sequence"),
            status__in=UNDONE_DELIVERY_STATUSES,
        )
    )


def _free(deliveries: QuerySet[WebhookDelivery]) -> QuerySet[WebhookDelivery]:
    """Those of ``deliveries`` whose endpoint is enabled and that no earlier one holds back."""
    return deliveries.filter(endpoint__enabled=True).filter(Q(endpoint__ordered=False) | ~earlier_undone())


# Claims of deliveries: the project's one lease primitive (``polaris.leases``).
WEBHOOK_LEASE = Lease(model=WebhookDelivery, free=Status.PENDING, held=Status.DELIVERING)


def _lease_until() -> Any:
    return lease_until(settings.WEBHOOK_LEASE_SECONDS)


@transaction.atomic
def _claim(delivery_id: int) -> int | None:
    """Claim the delivery if it is due and free to go; returns the claim's ``attempts`` (its fence).

    A claim is a short lease (``WEBHOOK_LEASE_SECONDS``) that the sender renews while it sends; a lapsed
    one (its sender died) is claimable again. ``next_attempt_at`` follows the lease, so one partial index
    (``webhook_delivery_due_idx``) finds both due pending deliveries and lapsed claims.
    """
    now = timezone.now()
    lease = _lease_until()
    due = Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Status.DELIVERING, locked_until__lt=now
    )
    mine = WebhookDelivery.objects.filter(pk=delivery_id)
    claimed = WEBHOOK_LEASE.claim(_free(mine.filter(due)), until=lease)
    if claimed != 1:
        return None
    return mine.values_list("attempts", flat=True).get()  # our row lock: the value our UPDATE wrote


@transaction.atomic
def _renew(*, delivery_id: int, attempts: int) -> int:
    """Heartbeat: extend this sender's claim, unless it lapsed and another sender holds it now."""
    return WEBHOOK_LEASE.renew([(delivery_id, attempts)], until=_lease_until())


@dataclass
class _Sent:
    status: int | None = None
    excerpt: str = ""
    error: str = ""
    retryable: bool = False
    refused: bool = False
    ms: float = 0.0


def _send(endpoint: WebhookEndpoint, *, msg_id: str, body: str) -> _Sent:
    """One signed POST; classifies the outcome (never raises for network trouble)."""
    timestamp = str(int(time.time()))
    headers = webhook_headers(
        signing_secrets=endpoint.signing_secrets(now=timezone.now()),
        msg_id=msg_id,
        timestamp=timestamp,
        body=body,
    )
    sent = _Sent()
    started = time.perf_counter()
    try:
        host, _port, address = target_resolve(endpoint.url)
        response = webhook_post(endpoint.url, address=address, host=host, headers=headers, body=body)
        sent.status = response.status_code
        sent.excerpt = response.text[:EXCERPT_CHARS]
        if 200 <= sent.status < 300:
            pass
        elif sent.status == 429 or sent.status >= 500:
            sent.retryable, sent.error = True, f"HTTP {sent.status}"
        elif 300 <= sent.status < 400:
            sent.error = f"HTTP {sent.status}: redirects are not followed"
        else:
            sent.error = f"HTTP {sent.status} (not retried)"
    except WebhookRefused as exc:
        sent.refused, sent.error = True, str(exc)
    except (httpx.TransportError, OSError) as exc:
        sent.retryable, sent.error = True, f"{type(exc).__name__}: {exc}"
    sent.ms = round((time.perf_counter() - started) * 1000, 3)
    return sent


def webhook_ping(*, endpoint: WebhookEndpoint) -> dict[str, Any]:
    """Send a signed test message (``event_type`` ``WebhookPing``) now; records nothing."""
    msg_id = f"msg_ping_{int(time.time() * 1000)}"
    body = json.dumps(
        {
            "id": msg_id,
            "event_type": "WebhookPing",
            "endpoint_id": endpoint.pk,
            "sent_at": timezone.now().isoformat(),
        },
        separators=(",", ":"),
    )
    sent = _send(endpoint, msg_id=msg_id, body=body)
    return {
        "delivered": not sent.error,
        "response_status": sent.status,
        "duration_ms": sent.ms,
        "response_excerpt": sent.excerpt,
        "error": sent.error,
        "webhook_id": msg_id,
    }


def webhook_delivery_attempt(*, delivery_id: int) -> AttemptResult:
    """Try to deliver once (if the delivery is due and free to go) and record the attempt."""
    attempts = _claim(delivery_id)
    if attempts is None:
        pending = WebhookDelivery.objects.filter(pk=delivery_id, status=Status.PENDING).first()
        if pending is not None and pending.next_attempt_at > timezone.now():
            # Woke up early (clock skew): come back when it is due. Held back: the earlier one wakes it.
            return AttemptResult(
                retry_in=max((pending.next_attempt_at - timezone.now()).total_seconds(), 0.05)
            )
        return AttemptResult()
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").get(pk=delivery_id)
    endpoint, event = delivery.endpoint, delivery.event
    body = json.dumps(event.envelope(), separators=(",", ":"), sort_keys=True, default=str)
    delivery.attempts = attempts  # the fence: settle and heartbeat act only while the claim is ours
    started_at = timezone.now()
    heartbeat = LeaseHeartbeat(
        renew=lambda: _renew(delivery_id=delivery_id, attempts=attempts),
        every=settings.WEBHOOK_HEARTBEAT_SECONDS,
        expected=1,
        name="webhook",
    )
    with heartbeat:
        sent = _send(endpoint, msg_id=str(event.id), body=body)
    return _settle(delivery=delivery, sent=sent, started_at=started_at)


@transaction.atomic
def _settle(*, delivery: WebhookDelivery, sent: _Sent, started_at: Any) -> AttemptResult:
    result = AttemptResult()
    now = timezone.now()
    fields: dict[str, Any] = {
        "response_status": sent.status,
        "response_ms": sent.ms,
        "last_error": sent.error[:2000],
        "locked_until": None,
    }
    if not sent.error:
        fields.update(status=Status.DELIVERED, delivered_at=now)
        outcome = "delivered"
    elif sent.retryable and (delay := retry_delay(delivery.attempts - delivery.round_start)) is not None:
        result.retry_in = delay
        fields.update(status=Status.PENDING, next_attempt_at=now + timedelta(seconds=delay))
        outcome = "retrying"
    else:
        outcome = "dead" if sent.retryable else "refused" if sent.refused else "failed"
        fields["status"] = outcome
    # Compare-and-swap on the claim: if it lapsed (this sender stalled past the lease) and another sender
    # holds the delivery now, that one records the outcome; this attempt leaves no trace but a log line.
    mine = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=Status.DELIVERING, attempts=delivery.attempts
    )
    if mine.update(**fields) != 1:
        logger.warning(
            "webhook claim lost before its outcome was recorded", extra={"delivery_id": delivery.pk}
        )
        return AttemptResult()
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        started_at=started_at,
        duration_ms=sent.ms,
        response_status=sent.status,
        response_excerpt=sent.excerpt,
        error=sent.error[:2000],
        outcome=outcome,
    )
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    endpoint_id = delivery.endpoint_id
    if outcome == "delivered":
        WebhookEndpoint.objects.filter(pk=endpoint_id, consecutive_failures__gt=0).update(
            consecutive_failures=0
        )
    else:
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(
            consecutive_failures=F("consecutive_failures") + 1
        )
        if _health_check(endpoint_id=endpoint_id) or not _enabled(endpoint_id):
            _pause_undone(endpoint_id=endpoint_id)
            result.retry_in = None
    if fields["status"] != Status.PENDING and delivery.endpoint.ordered and delivery.aggregate_id is not None:
        result.wake = list(
            WebhookDelivery.objects.filter(
                endpoint_id=endpoint_id,
                aggregate_type=delivery.aggregate_type,
                aggregate_id=delivery.aggregate_id,
                status=Status.PENDING,
            )
            .order_by("sequence", "id")
            .values_list("pk", flat=True)[:1]
        )
    return result


def _enabled(endpoint_id: int) -> bool:
    return WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).exists()


def _health_check(*, endpoint_id: int) -> bool:
    """Disable the endpoint if it just reached the failure threshold (once: compare-and-swap)."""
    threshold = settings.WEBHOOK_DISABLE_AFTER_FAILURES
    if threshold <= 0:
        return False
    now = timezone.now()
    reason = f"Disabled after {threshold} consecutive failed attempts."
    disabled = WebhookEndpoint.objects.filter(
        pk=endpoint_id, enabled=True, consecutive_failures__gte=threshold
    ).update(enabled=False, disabled_at=now, disabled_reason=reason, updated_at=now)
    if disabled != 1:
        return False
    name = WebhookEndpoint.objects.values_list("name", flat=True).get(pk=endpoint_id)
    alert_raise(
        severity="critical", message=f"Webhook endpoint {name!r}: {reason} Its deliveries are paused."
    )
    return True


def _pause_undone(*, endpoint_id: int) -> None:
    WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=Status.PENDING).update(
        status=Status.PAUSED, locked_until=None
    )


def webhook_deliveries_due(*, grace_seconds: float, limit: int = 500) -> list[int]:
    """Deliveries to re-enqueue, free to go: claims that lapsed (their sender died mid-attempt; due at
    once) and pending ones overdue by ``grace_seconds`` (their message was probably lost)."""
    now = timezone.now()
    overdue = WebhookDelivery.objects.filter(
        Q(status=Status.PENDING, next_attempt_at__lte=now - timedelta(seconds=grace_seconds))
        | Q(status=Status.DELIVERING, next_attempt_at__lt=now, locked_until__lt=now)
    )
    return list(_free(overdue).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
