"""Webhook subscriptions: an enabled endpoint receives every event of its ``event_types`` in its agency
(a global endpoint: every agency's), with no trigger. One dispatch handler (``webhook_subscriptions``,
with a batch form) writes the deliveries exactly as the ``webhook`` action does, through
``deliveries_queue``: one row per (endpoint, event) at most, whichever way selected it first.

Order per aggregate holds because the dispatcher hands an aggregate's events over in sequence (never two
in flight) and the delivery log sends an ordered endpoint's deliveries of one aggregate by ``sequence``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from outbox.models import OutboxEvent

from ..models import WebhookDelivery, WebhookEndpoint
from ..tasks import webhook_enqueue

HANDLER_NAME = "webhook_subscriptions"
Status = WebhookDelivery.Status


def event_agency(event: OutboxEvent) -> Any:
    """The agency of an event as its payload spells it (``None``: no agency)."""
    return event.payload.get("agency_id") if isinstance(event.payload, dict) else None


def endpoints_receiving() -> QuerySet[WebhookEndpoint]:
    """Endpoints that collect deliveries: enabled, or disabled by their health check (they collect them
    ``paused``); endpoints disabled by hand get none."""
    return WebhookEndpoint.objects.filter(Q(enabled=True) | Q(disabled_at__isnull=False))


def deliveries_queue(pairs: Iterable[tuple[WebhookEndpoint, OutboxEvent]]) -> list[int]:
    """Write a delivery for each (endpoint, event) that has none yet and queue the sending after commit;
    returns the new deliveries' ids. A pair already delivered (by a subscription or another trigger) is
    left alone: the unique ``(endpoint, event)`` constraint backs this check against a concurrent writer."""
    wanted: dict[tuple[int, Any], tuple[WebhookEndpoint, OutboxEvent]] = {}
    for endpoint, event in pairs:
        wanted.setdefault((endpoint.pk, event.pk), (endpoint, event))
    if not wanted:
        return []
    endpoint_ids = {key[0] for key in wanted}
    event_ids = {key[1] for key in wanted}
    mine = WebhookDelivery.objects.filter(endpoint_id__in=endpoint_ids, event_id__in=event_ids)
    existing = set(mine.values_list("endpoint_id", "event_id"))
    new = {key: pair for key, pair in wanted.items() if key not in existing}
    if not new:
        return []
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=endpoint,
                event=event,
                aggregate_type=event.aggregate_type,
                aggregate_id=event.aggregate_id,
                sequence=event.sequence,
                status=Status.PENDING if endpoint.enabled else Status.PAUSED,
            )
            for endpoint, event in new.values()
        ],
        ignore_conflicts=True,  # a concurrent writer's row wins; sending it twice is harmless (leased)
    )
    created = [
        (pk, status)
        for pk, endpoint_id, event_id, status in mine.values_list("pk", "endpoint_id", "event_id", "status")
        if (endpoint_id, event_id) in new
    ]
    for pk, status in sorted(created):
        if status == Status.PENDING:
            transaction.on_commit(partial(webhook_enqueue, pk), robust=True)
    return sorted(pk for pk, _ in created)


def subscription_pairs(
    events: list[OutboxEvent], endpoints: Iterable[WebhookEndpoint]
) -> list[tuple[WebhookEndpoint, OutboxEvent]]:
    """Which subscribed endpoint receives which event (events in stream order)."""
    subscribed = [endpoint for endpoint in endpoints if endpoint.event_types]
    return [
        (endpoint, event)
        for event in events
        for endpoint in subscribed
        if event.event_type in endpoint.event_types and endpoint.serves(event_agency(event))
    ]


def webhook_subscriptions_handle_many(events: list[OutboxEvent]) -> None:
    """The batch form: one read of the subscribed endpoints and one insert for the whole batch."""
    endpoints = list(endpoints_receiving().exclude(event_types=[]))
    deliveries_queue(subscription_pairs(events, endpoints))


def webhook_subscriptions_handle(event: OutboxEvent) -> None:
    """Deliver ``event`` to every endpoint subscribed to its type in its agency."""
    webhook_subscriptions_handle_many([event])
