"""``assign``: route the source task (or the one named in the payload) through the routing rules, as
``POST /tasks/{id}/route`` does: the rule's choice with its reasons on ``TaskAssigned``, or
``TaskRoutingFailed`` when nobody can take it."""

from __future__ import annotations

from typing import Any

from polaris.errors import NotFound
from routing.services.route import task_route
from workflow.models import Task

from .registry import ActionContext, Param, action_type


@action_type("assign", Param("task_id_field", max_length=100))
def assign(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Route the task by the system (``actor=None``), caused by the trigger's event; an already assigned
    task is routed again only when the rule chooses someone else (nothing is written otherwise)."""
    if params.get("task_id_field"):
        task_id = (context.names.get("payload") or {}).get(params["task_id_field"])
    else:
        source = context.source()
        task_id = source.pk if isinstance(source, Task) else None
    if not task_id:
        raise NotFound("No task to assign for this event.")
    outcome = task_route(task_id=task_id, actor=None, caused_by=context.event)
    return {
        "task_id": str(outcome.task.pk),
        "assigned": outcome.assigned,
        "assignee_id": outcome.assignee_id,
        "rule": str(outcome.rule.pk) if outcome.rule else None,
        "reasons": [item["code"] for item in outcome.reasons],
        "event_id": str(outcome.event.id) if outcome.event else None,
    }
