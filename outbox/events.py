"""The context every event carries (who, which correlation, caused by what) and the event-type registry.

Each app registers the event types it emits in its ``AppConfig.ready()``; rules that name an event type
(triggers, webhook filters, the event feed) accept only registered ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polaris.correlation import get_correlation_id, new_correlation_id

if TYPE_CHECKING:
    from outbox.models import OutboxEvent

_event_types: dict[str, str] = {}  # event type -> the app that emits it
_aggregate_types: set[str] = set()


def event_types_register(app_label: str, event_types: Iterable[str]) -> None:
    """Declare the event types ``app_label`` emits (idempotent)."""
    for event_type in event_types:
        owner = _event_types.setdefault(event_type, app_label)
        if owner != app_label:
            raise ValueError(f"Event type {event_type!r} is already registered by {owner!r}.")


def event_types_registered() -> list[str]:
    """Every registered event type, sorted."""
    return sorted(_event_types)


def aggregate_types_register(aggregate_types: Iterable[str]) -> None:
    """Declare aggregate types events are written for (the feed's ``aggregate_type`` filter accepts these)."""
    _aggregate_types.update(aggregate_types)


def aggregate_types_registered() -> list[str]:
    """Every registered aggregate type, sorted."""
    return sorted(_aggregate_types)


@dataclass(frozen=True)
class EventContext:
    """Actor and lineage stamped on the events a service call writes.

    ``actor`` is ``None`` for the system (automation, SLA scans). ``causation_id`` is the id of the event
    that caused this work; ``depth`` counts automation hops from the original human action.
    """

    actor: Any = None
    correlation_id: str = ""
    causation_id: uuid.UUID | None = None
    depth: int = 0
    reason: str = ""
    # The reason is for staff only (a client's view of the event leaves it out: ``outbox.projection``).
    reason_internal: bool = False

    @classmethod
    def build(
        cls,
        *,
        actor: Any = None,
        correlation_id: str | None = None,
        caused_by: OutboxEvent | None = None,
        reason: str = "",
        reason_internal: bool = False,
    ) -> EventContext:
        if caused_by is not None:
            return cls(
                actor=actor,
                correlation_id=correlation_id or caused_by.correlation_id,
                causation_id=caused_by.id,
                depth=caused_by.depth + 1,
                reason=reason,
                reason_internal=reason_internal,
            )
        return cls(
            actor=actor,
            correlation_id=correlation_id or get_correlation_id() or new_correlation_id(),
            reason=reason,
            reason_internal=reason_internal,
        )
