"""The in-transaction seams routing uses: creation (``post_save``, ``workflow.signals.task_created`` and
``tasks_created``) and every transition or edit (``workflow.signals.task_changed``). Each runs inside the
workflow write's transaction and only calls a routing function, so counters and routing commit or roll back
with the task."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from workflow.models import Task
from workflow.signals import task_changed, task_created, tasks_created

from .load import load_on_change, load_on_create
from .services.route import task_route_on_create, tasks_route_on_create


@receiver(post_save, sender=Task, dispatch_uid="routing.load_on_create")
def count_created_task(sender, instance: Task, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        load_on_create(instance)


@receiver(task_changed, sender=Task, dispatch_uid="routing.load_on_change")
def count_changed_task(sender, task: Task, source, target, changes, **kwargs) -> None:
    load_on_change(task, source=source, target=target, changes=changes)


@receiver(task_created, sender=Task, dispatch_uid="routing.route_on_create")
def route_created_task(sender, task: Task, context, **kwargs) -> None:
    task_route_on_create(task=task, context=context)


@receiver(tasks_created, sender=Task, dispatch_uid="routing.route_on_bulk_create")
def route_created_tasks(sender, tasks: list[Task], context, **kwargs) -> None:
    tasks_route_on_create(tasks=tasks, context=context)
