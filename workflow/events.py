"""The workflow's domain event vocabulary: what tasks and action plans emit, and what their payloads say.

The payload builders (``task_facts``, ``action_plan_facts``) are read by other apps too (SLA events and
automation's timers carry a task's facts), which is why they live here and not among the services.
"""

from typing import Any

from .models import ActionPlan, Task


class EventType:
    TASK_CREATED = "TaskCreated"
    TASK_STATE_CHANGED = "TaskStateChanged"
    TASK_UPDATED = "TaskUpdated"
    TASK_ASSIGNED = "TaskAssigned"
    ACTION_PLAN_CREATED = "ActionPlanCreated"
    ACTION_PLAN_ACTIVATED = "ActionPlanActivated"
    ACTION_PLAN_ARCHIVED = "ActionPlanArchived"
    ACTION_PLAN_UPDATED = "ActionPlanUpdated"
    CLIENT_LINKED = "ClientLinked"
    CLIENT_UNLINKED = "ClientUnlinked"
    # A client's personal data was erased (aggregate ``client``; the id and the counts, nothing personal).
    CLIENT_ERASED = "ClientErased"
    # Checklists and approvals (issue #24): on the task's and the plan's streams.
    TASK_CHECKLIST_ITEMS_ADDED = "TaskChecklistItemsAdded"
    TASK_CHECKLIST_ITEM_CHANGED = "TaskChecklistItemChanged"
    ACTION_PLAN_APPROVAL_RECORDED = "ActionPlanApprovalRecorded"


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
    EventType.CLIENT_LINKED,
    EventType.CLIENT_UNLINKED,
    EventType.CLIENT_ERASED,
    EventType.TASK_CHECKLIST_ITEMS_ADDED,
    EventType.TASK_CHECKLIST_ITEM_CHANGED,
    EventType.ACTION_PLAN_APPROVAL_RECORDED,
)

# The stream of a client's links (``polaris.accounts.models.client_aggregate_id`` gives its id).
CLIENT_AGGREGATE_TYPE = "client"


def task_facts(task: Task) -> dict[str, Any]:
    """What every task event says about the task (predicates and webhooks read these)."""
    return {
        "task_id": str(task.pk),
        "title": task.title,
        "task_type": task.task_type,
        "service_area": task.service_area,
        "priority": task.priority,
        "client_id": task.client_id,
        "agency_id": str(task.agency_id),
        "assignee_id": task.assignee_id,
        "action_plan_id": str(task.action_plan_id) if task.action_plan_id else None,
    }


def action_plan_facts(plan: ActionPlan) -> dict[str, Any]:
    """What every action plan event says about the plan."""
    return {
        "action_plan_id": str(plan.pk),
        "title": plan.title,
        "client_id": plan.client_id,
        "agency_id": str(plan.agency_id),
    }


# --- What a client sees of these events (registered with ``outbox.projection``) -------------------


def task_event_for_client(payload: dict[str, Any]) -> dict[str, Any]:
    """A task event as its client reads it: an internal reason is blanked; a staff-only field edited is
    named without text (as stored: ``workflow.services.edits.UNDESCRIBED_FIELDS``)."""
    internal = payload.pop("reason_internal", False)
    # An assignment's routing decision (workflow.extensions.assignment_annotators) is for staff only.
    payload.pop("routing", None)
    if internal and "reason" in payload:
        payload["reason"] = ""
    return payload


def event_for_client_as_stored(payload: dict[str, Any]) -> dict[str, Any]:
    """Events with nothing internal in them (a client reads them as stored)."""
    return payload


def approval_event_for_client(payload: dict[str, Any]) -> dict[str, Any]:
    """An approval as its client reads it: the decision and the counts, not who voted or what they wrote
    (the deliberation is staff-only)."""
    payload.pop("approver_id", None)
    payload.pop("comment", None)
    return payload


CLIENT_PROJECTIONS = {
    EventType.TASK_CREATED: task_event_for_client,
    EventType.TASK_STATE_CHANGED: task_event_for_client,
    EventType.TASK_UPDATED: task_event_for_client,
    EventType.TASK_ASSIGNED: task_event_for_client,
    EventType.ACTION_PLAN_CREATED: event_for_client_as_stored,
    EventType.ACTION_PLAN_ACTIVATED: task_event_for_client,
    EventType.ACTION_PLAN_ARCHIVED: task_event_for_client,
    EventType.ACTION_PLAN_UPDATED: event_for_client_as_stored,
    EventType.CLIENT_LINKED: event_for_client_as_stored,
    EventType.CLIENT_UNLINKED: event_for_client_as_stored,
    EventType.CLIENT_ERASED: event_for_client_as_stored,  # the client id and counts, nothing personal
    # Checklist events carry no item text (its length and digest only): a client sees its task's checklist.
    EventType.TASK_CHECKLIST_ITEMS_ADDED: task_event_for_client,
    EventType.TASK_CHECKLIST_ITEM_CHANGED: task_event_for_client,
    EventType.ACTION_PLAN_APPROVAL_RECORDED: approval_event_for_client,
}
