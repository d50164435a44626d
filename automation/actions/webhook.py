"""``webhook``: queue signed deliveries of the event (sent later by ``automation.tasks``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q

from ..models import WebhookDelivery, WebhookEndpoint
from ..tasks import webhook_enqueue
from .registry import ActionContext, Param, action_type


def _endpoint_check(value: int) -> str | None:
    if not WebhookEndpoint.objects.filter(pk=value).exists():
        return f"no webhook endpoint with id {value}"
    return None


@action_type("webhook", Param("endpoint", kind=int, check=_endpoint_check))
def webhook(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Queue a signed delivery of the event to one endpoint (or every endpoint accepting it).

    Endpoints disabled by their health check collect the delivery as ``paused`` (sent, in order, when
    re-enabled); endpoints disabled by hand get none. The HTTP request happens later in a Celery task
    enqueued after commit, never in this transaction.
    """
    event = context.event
    endpoints = WebhookEndpoint.objects.filter(Q(enabled=True) | Q(disabled_at__isnull=False))
    if params.get("endpoint"):
        endpoints = endpoints.filter(pk=params["endpoint"])
    delivery_ids = []
    for endpoint in endpoints:
        if not endpoint.filters(event.event_type):
            continue
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event=event,
            aggregate_type=event.aggregate_type,
            aggregate_id=event.aggregate_id,
            sequence=event.sequence,
            status=WebhookDelivery.Status.PENDING if endpoint.enabled else WebhookDelivery.Status.PAUSED,
        )
        delivery_ids.append(delivery.pk)
        if endpoint.enabled:
            transaction.on_commit(partial(webhook_enqueue, delivery.pk), robust=True)
    return {"deliveries": delivery_ids}
