"""Who may do what to an object in scope. Scoping itself (what a user can see) lives in selectors."""

from typing import Any


def is_staff_for(obj: Any, user: Any) -> bool:
    """Admins act on everything; agency agents on their own agency's objects."""
    if user is None:
        return True  # the system itself: automation, SLA scans
    if user.role == "admin":
        return True
    return user.role == "agency" and user.agency_id is not None and obj.agency_id == user.agency_id


def may_cancel_task(task: Any, user: Any) -> bool:
    """Staff may cancel; a client may cancel its own task while it is still new."""
    if is_staff_for(task, user):
        return True
    return user.role == "client" and task.client_id == user.pk and task.state == "new"
