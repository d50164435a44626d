"""Dispatch services: draining the outbox and replaying dead-lettered events."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from polaris.accounts.models import User
from workflow.errors import Conflict, NotFound, PermissionDenied
from workflow.models import OutboxEvent

from .dispatcher import DispatchReport, outbox_claim, outbox_dispatch, outbox_dispatch_batch, retry_delay
from .kick import kick_after_commit

__all__ = [
    "DispatchReport",
    "outbox_claim",
    "outbox_dispatch",
    "outbox_dispatch_batch",
    "outbox_event_replay",
    "retry_delay",
]


@transaction.atomic
def outbox_event_replay(*, event_id: Any, actor: User | None) -> OutboxEvent:
    """Put a dead-lettered event back in the queue: ``dead → pending``, due now, attempts reset.

    Admins only (``actor=None``, the system, may too): ``PermissionDenied`` otherwise. ``NotFound`` for
    an unknown id, ``Conflict`` when the event is not dead (replaying a live event would race the
    dispatcher). Handlers that already handled it are skipped by the ledger, so only the failed ones run.
    """
    if actor is not None and actor.role != User.Role.ADMIN:
        raise PermissionDenied("Only administrators may replay events.")
    try:
        pk = uuid.UUID(str(event_id))
    except (TypeError, ValueError):
        raise NotFound("Event not found.") from None
    replayed = OutboxEvent.objects.filter(pk=pk, status=OutboxEvent.Status.DEAD).update(
        status=OutboxEvent.Status.PENDING, attempts=0, next_attempt_at=timezone.now(), locked_until=None
    )
    event = OutboxEvent.objects.filter(pk=pk).first()
    if event is None:
        raise NotFound("Event not found.")
    if not replayed:
        raise Conflict(
            f"Only dead events can be replayed; this one is {event.status}.",
            details={"event_id": str(pk), "status": event.status},
        )
    kick_after_commit()
    return event
