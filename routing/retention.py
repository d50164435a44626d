"""Retention of routing decisions: a closed task's decision is no longer needed to recognise an override
(closed tasks are not reassigned), so it goes 30 days after the task's last change."""

from polaris.retention import batches_delete, cutoff_days

from .models import TaskRouting

CLOSED_STATES = ("completed", "cancelled")
RETENTION_DAYS = 30


def task_routing_trim(*, batch: int) -> int:
    cutoff = cutoff_days(RETENTION_DAYS)
    if cutoff is None:
        return 0
    rows = TaskRouting.objects.filter(task__state__in=CLOSED_STATES, task__updated_at__lt=cutoff)
    return batches_delete(rows, batch=batch)
