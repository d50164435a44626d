"""Routing's words in the event history: what a routed ``TaskAssigned`` carries, and ``TaskRoutingFailed``.

A routed assignment's ``TaskAssigned`` carries ``routing: {rule, rule_name, strategy, reasons}`` (added by
the assignment annotator below, which workflow calls while writing the event: ``workflow.extensions``). A
later manual reassignment of a routed task carries ``routing: {override: true, …}`` naming the decision it
overrides. When a rule matched but nobody could take the task, ``TaskRoutingFailed`` (on the task's stream)
says why. Both are staff-only: clients see no routing payload.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

from .models import TaskRouting


class RoutingEventType:
    TASK_ROUTING_FAILED = "TaskRoutingFailed"


ROUTING_EVENT_TYPES = (RoutingEventType.TASK_ROUTING_FAILED,)


def routing_event_for_client(payload: dict[str, Any]) -> dict[str, Any]:
    """What a client sees of ``TaskRoutingFailed``: nothing (who is away or at capacity is staff business)."""
    return {}


@dataclass(frozen=True)
class PendingAssignment:
    """The decision being written: set by ``routing.services.route`` around its call of the workflow's
    assignment service, read by the annotator inside that call (same thread, same transaction)."""

    task_id: Any
    assignee_id: int
    routing: dict[str, Any]


_pending: contextvars.ContextVar[PendingAssignment | None] = contextvars.ContextVar(
    "routing_pending_assignment", default=None
)


def pending_set(pending: PendingAssignment | None) -> contextvars.Token:
    return _pending.set(pending)


def pending_reset(token: contextvars.Token) -> None:
    _pending.reset(token)


def assignment_annotate(
    task: Any, old_assignee_id: Any, new_assignee_id: Any, context: Any
) -> dict[str, Any]:
    """The ``routing`` block of a ``TaskAssigned`` payload: the decision, an override of one, or nothing."""
    pending = _pending.get()
    if pending is not None and pending.task_id == task.pk and pending.assignee_id == new_assignee_id:
        return {"routing": pending.routing}
    routed = (
        TaskRouting.objects.filter(pk=task.pk)
        .values_list("rule_id", "strategy", "assignee_id_routed")
        .first()
    )
    if routed is None:
        return {}
    rule_id, strategy, routed_assignee = routed
    actor = getattr(context, "actor", None)
    return {
        "routing": {
            "override": True,
            "rule": str(rule_id) if rule_id else None,
            "strategy": strategy,
            "routed_assignee_id": routed_assignee,
            "by": getattr(actor, "pk", None),
            "reasons": [
                {
                    "code": "MANUAL_OVERRIDE",
                    "message": "Reassigned by hand, overriding the routing decision.",
                }
            ],
        }
    }
