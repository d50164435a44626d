"""Guard conditions for the state machines. Each has a stable ``guard_name`` that errors report.

They take the instance only (django-fsm's contract) and write nothing.
"""

from collections.abc import Callable
from typing import Any

from .states import TaskState

Guard = Callable[[Any], bool]


def guard(name: str) -> Callable[[Guard], Guard]:
    def decorate(func: Guard) -> Guard:
        func.guard_name = name  # type: ignore[attr-defined]
        return func

    return decorate


def guard_name(func: Guard) -> str:
    return getattr(func, "guard_name", func.__name__)


@guard("has_assignee")
def has_assignee(task: Any) -> bool:
    return task.assignee_id is not None


@guard("dependencies_met")
def dependencies_met(task: Any) -> bool:
    """A task made from a template starts only once the tasks it waits for are done (``waiting_on`` is
    emptied through dispatch when they complete: ``careplans.readiness``)."""
    return not task.waiting_on


@guard("has_blocked_reason")
def has_blocked_reason(task: Any) -> bool:
    return bool((task.blocked_reason or "").strip())


@guard("has_tasks")
def has_tasks(plan: Any) -> bool:
    return plan.tasks.exists()


@guard("all_tasks_closed")
def all_tasks_closed(plan: Any) -> bool:
    return not plan.tasks.exclude(state__in=(TaskState.COMPLETED, TaskState.CANCELLED)).exists()


# --- Checklists and approvals (workflow.services.checklists, workflow.services.approvals) -------------


@guard("checklist_complete")
def checklist_complete(task: Any) -> bool:
    """No required checklist item is open (a counter on the task: no query), unless the completing service
    recorded a supervisor's override on the instance (``guards_overridden``, not a column)."""
    if task.checklist_open_required == 0:
        return True
    return "checklist_complete" in getattr(task, "guards_overridden", ())


@guard("approved")
def approved(plan: Any) -> bool:
    """A plan with an ``approval_policy`` has ``count`` approvals in its current round (only eligible
    approvers can vote, so every approval counts). Reads the prefetched approvals when there are some."""
    policy = plan.approval_policy
    if not policy:
        return True
    votes = [
        vote
        for vote in plan.approvals.all()
        if vote.round == plan.approval_round and vote.decision == "approve"
    ]
    return len(votes) >= int(policy.get("count", 1))
