"""Task-specific permission rules, built on the role rules in ``polaris.access``."""

from typing import Any

from polaris.access import is_client, is_staff_for


def may_cancel_task(task: Any, user: Any) -> bool:
    """Staff may cancel; a client may cancel its own task while it is still new."""
    if is_staff_for(task, user):
        return True
    return is_client(user) and task.client_id == user.pk and task.state == "new"
