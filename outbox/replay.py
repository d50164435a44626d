"""Replaying dead-lettered events."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from outbox.models import OutboxEvent
from polaris.access import require_admin
from polaris.accounts.models import User
from polaris.audit.services import audit_record
from polaris.errors import Conflict, NotFound

from .kick import kick_after_commit


@transaction.atomic
def outbox_event_replay(*, event_id: Any, actor: User | None) -> OutboxEvent:
    """Put a dead-lettered event back in the queue: ``dead → pending``, due now, attempts reset.

    Admins only (``actor=None``, the system, may too): ``PermissionDenied`` otherwise. ``NotFound`` for
    an unknown id, ``Conflict`` when the event is not dead (replaying a live event would race the
    dispatcher). Handlers that already handled it are skipped by the ledger, so only the failed ones run.
    """
    require_admin(actor, "Only administrators may replay events.")
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
    audit_record(
        actor=actor,
        action="event.replayed",
        object_type="outboxevent",
        object_id=event.pk,
        agency_id=(event.payload or {}).get("agency_id") if isinstance(event.payload, dict) else None,
        before={"status": OutboxEvent.Status.DEAD},
        after={"status": OutboxEvent.Status.PENDING, "event_type": event.event_type},
    )
    kick_after_commit()
    return event
