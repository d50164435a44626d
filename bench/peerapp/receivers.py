"""The outbox row, written in the transition's transaction by a ``post_transition`` receiver."""

from django.dispatch import receiver
from django_fsm.signals import post_transition

from .models import PeerEvent, PeerTask


@receiver(post_transition, sender=PeerTask)
def peer_event_write(sender, instance: PeerTask, name: str, source: str, target: str, **kwargs) -> None:
    PeerEvent.objects.create(
        event_type="TaskStateChanged",
        aggregate_type="task",
        aggregate_id=instance.pk,
        sequence=instance.version,
        actor_id=getattr(kwargs.get("method_kwargs", {}).get("by"), "pk", None),
        payload={
            "task_id": instance.pk,
            "title": instance.title,
            "task_type": instance.task_type,
            "service_area": instance.service_area,
            "priority": instance.priority,
            "client_id": instance.client_id,
            "agency_id": str(instance.agency_id),
            "assignee_id": instance.assignee_id,
            "old_state": source,
            "new_state": target,
            "transition": name,
        },
    )
