"""The in-transaction seam: every django-fsm transition of a Task or ActionPlan writes its outbox row."""

from django.dispatch import receiver
from django_fsm.signals import post_transition

from .models import ActionPlan, Task
from .services.events import event_record_transition


@receiver(post_transition, sender=Task, dispatch_uid="workflow.task_outbox")
@receiver(post_transition, sender=ActionPlan, dispatch_uid="workflow.action_plan_outbox")
def record_transition_event(sender, instance, name, source, target, method_kwargs, **kwargs) -> None:
    event_record_transition(
        instance=instance, transition=name, source=source, target=target, context=method_kwargs["context"]
    )
