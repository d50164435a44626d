"""``create_task``: a new task for the source's client, agency and plan."""

from __future__ import annotations

from typing import Any

from polaris.accounts.models import User
from polaris.errors import NotFound, ValidationFailed
from workflow.models import Task, TaskPriority
from workflow.services.tasks import task_create
from workflow.validation import SLUG, TITLE_MAX_LENGTH, is_slug

from .registry import ActionContext, Param, action_type


def _slug_check(value: str) -> str | None:
    return None if is_slug(value) else "must be a lowercase slug such as 'assessment'"


def _assignee_check(value: Any) -> str | None:
    if value == "source" or (isinstance(value, int) and not isinstance(value, bool)):
        return None
    return "must be a user id or 'source' (the source task's assignee)"


@action_type(
    "create_task",
    Param("task_type", required=True, max_length=64, check=_slug_check, schema={"pattern": SLUG.pattern}),
    Param("title", required=True, max_length=TITLE_MAX_LENGTH, template=True),
    Param("priority", choices=tuple(TaskPriority.values)),
    Param("service_area", max_length=64, check=_slug_check, schema={"pattern": SLUG.pattern}),
    Param("description", max_length=5000, template=True),
    Param(
        "assignee",
        kind=(int, str),
        check=_assignee_check,
        schema={"oneOf": [{"type": "integer"}, {"type": "string", "enum": ["source"]}]},
    ),
)
def create_task(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """A new task for the source's client, agency and plan (service area inherited unless given)."""
    source = context.source()
    if source is None:
        raise ValidationFailed("create_task needs an event about a task or an action plan.")
    plan = source.action_plan if isinstance(source, Task) else source
    service_area = params.get("service_area") or (source.service_area if isinstance(source, Task) else "")
    assignee = None
    if params.get("assignee") == "source":
        assignee = source.assignee if isinstance(source, Task) else None
    elif params.get("assignee"):
        assignee = User.objects.filter(pk=params["assignee"]).first()
        if assignee is None:
            raise NotFound(f"Assignee {params['assignee']} not found.")
    task = task_create(
        actor=None,
        title=context.render(params["title"])[:TITLE_MAX_LENGTH],
        description=context.render(params.get("description") or ""),
        task_type=params["task_type"],
        priority=params.get("priority") or TaskPriority.NORMAL,
        service_area=service_area,
        client=source.client,
        agency=source.agency,
        assignee=assignee,
        action_plan=plan,
        caused_by=context.event,
    )
    return {"task_id": str(task.pk)}
