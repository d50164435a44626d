"""The workflow's own domain errors (the ``DomainError`` family): closed objects and stale preconditions."""

from polaris import errors


class TaskClosed(errors.Conflict):
    """A completed or cancelled task is closed to edits."""

    error_code = "TASK_CLOSED"
    default_message = "This task is closed (completed or cancelled) and can no longer be edited."


class ActionPlanClosed(errors.Conflict):
    """An archived plan is closed: it cannot be edited, and tasks cannot join or leave it."""

    error_code = "ACTION_PLAN_CLOSED"
    default_message = "This action plan is archived and can no longer change."


class PreconditionFailed(errors.PreconditionFailed):
    """``If-Match`` named a version that is no longer the object's current one."""

    default_message = "The object has changed since the version named in If-Match; reload it and retry."

    def __init__(self, *, expected: int | frozenset[int], current: int | None = None) -> None:
        details: dict = {"expected_version": expected if isinstance(expected, int) else sorted(expected)}
        if current is not None:
            details["current_version"] = current
        super().__init__(details=details)


class SavedViewNameTaken(errors.Conflict):
    """Each person's views have distinct names (a list of them reads by name)."""

    error_code = "SAVED_VIEW_NAME_TAKEN"
    default_message = "You already have a saved view with this name."


class SavedViewLimitReached(errors.Conflict):
    """A person keeps at most ``SAVED_VIEWS_PER_OWNER`` views."""

    error_code = "SAVED_VIEW_LIMIT_REACHED"
    default_message = "You have as many saved views as one person may keep; delete one first."


# --- Approvals (workflow.services.approvals) ---------------------------------------------------------


class ApprovalNotOpen(errors.Conflict):
    """Only a draft plan with an approval policy takes approvals."""

    error_code = "APPROVAL_NOT_OPEN"
    default_message = "This plan takes no approvals: it is not a draft, or it has no approval policy."


class ApprovalAlreadyRecorded(errors.Conflict):
    """One vote per approver per round: a rejection starts a new round, where everyone votes again."""

    error_code = "APPROVAL_ALREADY_RECORDED"
    default_message = "You have already voted on this plan in its current approval round."
