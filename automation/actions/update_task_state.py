"""``update_task_state``: move a task through the same transition service the API uses."""

from __future__ import annotations

from typing import Any

from polaris.errors import NotFound
from workflow.models import Task, TaskState
from workflow.services.tasks import task_transition

from .registry import ActionContext, Param, action_type


@action_type(
    "update_task_state",
    Param("target_state", required=True, choices=tuple(TaskState.values)),
    Param("task_id_field", max_length=100),
    Param("reason", max_length=1000, template=True),
)
def update_task_state(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Move the source task (or the one whose id is in ``payload[task_id_field]``) through the same
    service the API uses: edges, guards and the event are the same; a refusal is a ``DomainError``."""
    if params.get("task_id_field"):
        task_id = (context.names.get("payload") or {}).get(params["task_id_field"])
    else:
        source = context.source()
        task_id = source.pk if isinstance(source, Task) else None
    if not task_id:
        raise NotFound("No task to update for this event.")
    task, event = task_transition(
        task_id=task_id,
        target_state=params["target_state"],
        actor=None,
        reason=context.render(params.get("reason") or ""),
        caused_by=context.event,
    )
    return {"task_id": str(task.pk), "state": task.state, "event_id": str(event.id)}
