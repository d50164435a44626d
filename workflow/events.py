"""The workflow's domain event vocabulary: what tasks and action plans emit."""


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
