"""The in-transaction seam: every django-fsm transition of a Task or ActionPlan writes its outbox row.

One receiver, one visible call: append the event (``workflow.services.events``, through the outbox), then,
for a task, hand what the write produced to ``task_changed``'s receivers as arguments.
"""

from django.dispatch import receiver
from django_fsm.signals import post_transition

from .models import ActionPlan, Task
from .services.events import event_record_transition
from .signals import task_changed


@receiver(post_transition, sender=Task, dispatch_uid="workflow.task_outbox")
@receiver(post_transition, sender=ActionPlan, dispatch_uid="workflow.action_plan_outbox")
def record_transition_event(sender, instance, name, source, target, method_kwargs, **kwargs) -> None:
    context = method_kwargs["context"]
    event, locked_rows = event_record_transition(
        instance=instance, transition=name, source=source, target=target, context=context
    )
    # django-fsm discards a receiver's return value: the service that ran the transition method reads
    # the event here (``workflow.services.transitions``).
    instance.recorded_event = event
    if sender is Task:
        task_changed.send(
            sender=Task,
            task=instance,
            event=event,
            context=context,
            locked_rows=locked_rows,
            source=source,
            target=target,
            changes={},
        )
