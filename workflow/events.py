"""The workflow's domain event vocabulary: what tasks and action plans emit."""


class EventType:
    TASK_CREATED = "TaskCreated"
    TASK_STATE_CHANGED = "TaskStateChanged"
    TASK_UPDATED = "TaskUpdated"
    TASK_ASSIGNED = "TaskAssigned"
    ACTION_PLAN_CREATED = "ActionPlanCreated"
    ACTION_PLAN_ACTIVATED = "ActionPlanActivated"
    ACTION_PLAN_ARCHIVED = "ActionPlanArchived"
    ACTION_PLAN_UPDATED = "ActionPlanUpdated"


# Event types emitted by the workflow app itself; other apps (sla, automation) add their own.
WORKFLOW_EVENT_TYPES = (
    EventType.TASK_CREATED,
    EventType.TASK_STATE_CHANGED,
    EventType.TASK_UPDATED,
    EventType.TASK_ASSIGNED,
    EventType.ACTION_PLAN_CREATED,
    EventType.ACTION_PLAN_ACTIVATED,
    EventType.ACTION_PLAN_ARCHIVED,
    EventType.ACTION_PLAN_UPDATED,
)
