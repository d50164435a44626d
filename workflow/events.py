"""Domain event vocabulary, and the context every event carries: who, which correlation, caused by what."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polaris.correlation import get_correlation_id, new_correlation_id

if TYPE_CHECKING:
    from workflow.models import OutboxEvent


class EventType:
    TASK_CREATED = "TaskCreated"
    TASK_STATE_CHANGED = "TaskStateChanged"
    ACTION_PLAN_CREATED = "ActionPlanCreated"
    ACTION_PLAN_ACTIVATED = "ActionPlanActivated"
    ACTION_PLAN_ARCHIVED = "ActionPlanArchived"


# Event types emitted by the workflow app itself; other apps (sla, automation) add their own.
WORKFLOW_EVENT_TYPES = (
    EventType.TASK_CREATED,
    EventType.TASK_STATE_CHANGED,
    EventType.ACTION_PLAN_CREATED,
    EventType.ACTION_PLAN_ACTIVATED,
    EventType.ACTION_PLAN_ARCHIVED,
)


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

    @classmethod
    def build(
        cls,
        *,
        actor: Any = None,
        correlation_id: str | None = None,
        caused_by: OutboxEvent | None = None,
        reason: str = "",
    ) -> EventContext:
        if caused_by is not None:
            return cls(
                actor=actor,
                correlation_id=correlation_id or caused_by.correlation_id,
                causation_id=caused_by.id,
                depth=caused_by.depth + 1,
                reason=reason,
            )
        return cls(
            actor=actor,
            correlation_id=correlation_id or get_correlation_id() or new_correlation_id(),
            reason=reason,
        )
