"""``webhook``: queue signed deliveries of the event (sent later by ``automation.tasks``)."""

from __future__ import annotations

from typing import Any

from ..models import WebhookEndpoint
from ..webhooks.subscriptions import deliveries_queue, endpoints_receiving, event_agency
from .registry import ActionContext, Param, action_type


def _endpoint_check(value: int) -> str | None:
    if not WebhookEndpoint.objects.filter(pk=value).exists():
        return f"no webhook endpoint with id {value}"
    return None


@action_type("webhook", Param("endpoint", kind=int, check=_endpoint_check))
def webhook(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Queue a signed delivery of the event to one endpoint (or every endpoint accepting it) of the
    event's agency, or a global one: another agency's endpoint never receives it.

    An endpoint accepts what a trigger sends when its ``event_types`` is empty or lists the event's type.
    An endpoint already holding a delivery of this event (its subscription, another trigger) gets no
    second one. Endpoints disabled by their health check collect the delivery as ``paused`` (sent, in
    order, when re-enabled); endpoints disabled by hand get none. The HTTP request happens later in a
    Celery task enqueued after commit, never in this transaction.
    """
    event = context.event
    endpoints = endpoints_receiving()
    if params.get("endpoint"):
        endpoints = endpoints.filter(pk=params["endpoint"])
    agency = event_agency(event)
    chosen = [
        endpoint for endpoint in endpoints if endpoint.serves(agency) and endpoint.filters(event.event_type)
    ]
    return {"deliveries": deliveries_queue((endpoint, event) for endpoint in chosen)}
