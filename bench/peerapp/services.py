"""The peer's write: lock the row, pick the edge django-fsm offers this user, transition, save."""

from django.db import transaction

from .models import PeerTask


class PeerTransitionRefused(Exception):
    pass


@transaction.atomic
def peer_task_transition(*, task_id: int, target_state: str, actor, reason: str = "") -> PeerTask:
    """Scoped like ours (an agent sees its agency's tasks), row-locked for the whole transaction."""
    tasks = PeerTask.objects.select_for_update()
    if actor.role != "admin":
        tasks = tasks.filter(agency_id=actor.agency_id)
    task = tasks.get(pk=task_id)
    if target_state == "blocked":
        task.blocked_reason = reason
    for candidate in task.get_available_user_state_transitions(actor):
        if candidate.target == target_state:
            break
    else:
        raise PeerTransitionRefused(f"{task.state} -> {target_state}")
    task.version += 1  # the stream position the receiver's event takes (unique per aggregate)
    getattr(task, candidate.name)(by=actor, description=reason or None)
    task.save()
    return task
