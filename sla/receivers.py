"""The in-transaction seam: task creation, transitions and edits drive the task's SLA record.

The receivers run inside the caller's ``transaction.atomic()`` (``task_create`` / ``task_transition`` /
``task_update``),
so the task's state and its SLA bookkeeping commit or roll back together. They only call services.
"""

from django.db.models.signals import post_save
from django.dispatch import receiver
from django_fsm.signals import post_transition

from outbox.events import EventContext
from workflow.models import Task
from workflow.signals import task_updated

from .clock import (
    sla_record_locked,
    sla_record_rematch,
    sla_record_start,
    sla_record_track_transition,
)


# workflow emits no django-fsm transition when a task is created, so creation is seen through post_save.
@receiver(post_save, sender=Task, dispatch_uid="sla.task_created")
def start_sla_record(sender, instance: Task, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        sla_record_start(task=instance)


@receiver(post_transition, sender=Task, dispatch_uid="sla.task_transition")
def track_sla_record(sender, instance: Task, name, source, target, method_kwargs, **kwargs) -> None:
    context = method_kwargs.get("context") or EventContext.build(actor=None)
    sla_record_track_transition(task=instance, source=source, target=target, context=context)


@receiver(task_updated, sender=Task, dispatch_uid="sla.task_updated")
def rematch_sla_record(sender, task: Task, changes: dict, **kwargs) -> None:
    if "service_area" in changes or "task_type" in changes:
        sla_record_rematch(task=task)
    else:
        sla_record_locked(task)  # nothing to change; caches the record the edit's statement locked
