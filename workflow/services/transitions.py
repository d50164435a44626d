"""The one way a state machine moves: find the edge, check permission and guards, transition, save."""

from __future__ import annotations

from django.db import transaction

from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.errors import DomainError, GuardFailed, InvalidTransition, PermissionDenied
from workflow.guards import guard_name
from workflow.machines import transition_find
from workflow.metrics import WORKFLOW_TRANSITIONS
from workflow.models import ActionPlan, Task


def transition_apply(*, instance: Task | ActionPlan, target_state: str, context: EventContext) -> OutboxEvent:
    """Run the django-fsm transition to ``target_state`` and persist it; call inside ``atomic()``.

    The transition's ``post_transition`` receiver writes the event (and claims the stream position,
    raising ``ConcurrentModification`` if another writer got there first).
    """
    entity = instance.aggregate_type
    try:
        event = _apply(instance=instance, target_state=target_state, context=context, entity=entity)
    except DomainError as exc:
        WORKFLOW_TRANSITIONS.labels(entity, exc.error_code.lower()).inc()
        raise
    transaction.on_commit(lambda: WORKFLOW_TRANSITIONS.labels(entity, "success").inc())
    return event


def _apply(
    *, instance: Task | ActionPlan, target_state: str, context: EventContext, entity: str
) -> OutboxEvent:
    transition = transition_find(type(instance), source=instance.state, target=target_state)
    if transition is None:
        raise InvalidTransition(source=instance.state, target=target_state, entity=entity)
    actor = context.actor
    if actor is not None and not transition.has_perm(instance, actor):
        raise PermissionDenied(
            f"You may not move this {entity.replace('_', ' ')} from {instance.state} to {target_state}."
        )
    failed = [guard_name(condition) for condition in transition.conditions if not condition(instance)]
    if failed:
        raise GuardFailed(guards=failed, source=instance.state, target=target_state)
    # The post_transition receiver persists the transition (compare-and-swap), writes its event and hands
    # it back here on the instance (django-fsm discards receiver results).
    getattr(instance, transition.name)(context=context)
    return instance.recorded_event
