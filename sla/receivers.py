"""The in-transaction seam: task creation, transitions and edits drive the task's SLA record.

The receivers run inside the caller's ``transaction.atomic()`` (``task_create`` / ``task_transition`` /
``task_update``), so the task's state and its SLA bookkeeping commit or roll back together. They only call
services, with what the workflow's write produced (its locked SLA record) passed as arguments.
"""

from django.db.models.signals import post_save
from django.dispatch import receiver

from workflow.models import Task
from workflow.signals import task_changed

from .clock import sla_record_start, sla_record_task_changed


# workflow emits no django-fsm transition when a task is created, so creation is seen through post_save.
@receiver(post_save, sender=Task, dispatch_uid="sla.task_created")
def start_sla_record(sender, instance: Task, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        sla_record_start(task=instance)


@receiver(task_changed, sender=Task, dispatch_uid="sla.task_changed")
def track_sla_record(sender, task: Task, target, changes, context, locked_rows, **kwargs) -> None:
    sla_record_task_changed(
        task=task, target=target, changes=changes, context=context, locked_rows=locked_rows
    )
