"""What a viewer may see of an event, decided in one place.

Admins and agency staff see events as stored. A client sees each event through the projection its
event type registered (``client_projection_register``, from the emitting app's ``AppConfig.ready()``):
a function from the stored payload to the payload a client may read (internal reasons, staff-only
notes and SLA configuration left out). An event type that registered none shows a client an empty
payload: what is not declared safe is withheld.

Both ways a client reads events go through :func:`event_project`: the task's event history (the
workflow API's event serializer) and the event feed (:func:`feed_events_project`, one call in its view).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from polaris.access import is_client

ClientProjection = Callable[[dict[str, Any]], dict[str, Any]]

_client_projections: dict[str, ClientProjection] = {}


def client_projection_register(event_type: str, projection: ClientProjection) -> None:
    """Declare what a client sees of ``event_type``'s payload (idempotent for the same function)."""
    current = _client_projections.setdefault(event_type, projection)
    if current is not projection:
        raise ValueError(f"Event type {event_type!r} already has a client projection.")


def client_projection_of(event_type: str) -> ClientProjection | None:
    """The registered client projection of ``event_type`` (``None``: its payload is withheld)."""
    return _client_projections.get(event_type)


def payload_for_client(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload of an ``event_type`` event as a client may read it."""
    projection = _client_projections.get(event_type)
    return {} if projection is None else projection(dict(payload or {}))


def event_project(event: dict[str, Any], *, viewer: Any) -> dict[str, Any]:
    """``event`` (an envelope with ``event_type`` and ``payload``) as ``viewer`` may see it."""
    if not is_client(viewer):
        return event
    return {**event, "payload": payload_for_client(event["event_type"], event.get("payload") or {})}


def feed_events_project(raw: list[str], *, viewer: Any) -> list[str]:
    """The feed's events (JSON texts, passed through unparsed for staff) as ``viewer`` may see them."""
    if not is_client(viewer):
        return raw
    return [json.dumps(event_project(json.loads(text), viewer=viewer), separators=(",", ":")) for text in raw]
