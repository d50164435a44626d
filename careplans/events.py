"""What the care-plan app writes to the outbox: readiness of waiting tasks (aggregate ``task``) and a plan's
move to another template version (aggregate ``action_plan``)."""

from typing import Any


class CarePlanEventType:
    # One of a waiting task's predecessors is done; it still waits for others (``waiting_on``).
    TASK_DEPENDENCY_MET = "TaskDependencyMet"
    # The last predecessor is done: the task may start; ``due_at`` is set from its blueprint.
    TASK_READY = "TaskReady"
    # The plan now runs another version of its template (the tasks' own events say what changed).
    ACTION_PLAN_TEMPLATE_MIGRATED = "ActionPlanTemplateMigrated"


CAREPLAN_EVENT_TYPES = (
    CarePlanEventType.TASK_DEPENDENCY_MET,
    CarePlanEventType.TASK_READY,
    CarePlanEventType.ACTION_PLAN_TEMPLATE_MIGRATED,
)


def careplan_event_for_client(payload: dict[str, Any]) -> dict[str, Any]:
    """Nothing internal in these events (task facts, ids, dates): a client reads them as stored."""
    return payload
