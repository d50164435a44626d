"""Linking clients to the agencies that serve them: each change one ``ClientLinked`` / ``ClientUnlinked``
event on the client's stream (aggregate ``client``), written with the link in one transaction.

Admins link any client to any agency; a supervisor links a client to their own agency only, and sees
only the clients linked to it or served by no agency yet (``workflow.selectors.client_for_links_get``).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.db.models import Max

from outbox.append import event_append
from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.access import manager_scope, require_manager
from polaris.accounts.models import Agency, ClientAgencyLink, User, client_aggregate_id
from polaris.audit.services import audit_record
from polaris.errors import NotFound
from workflow.events import CLIENT_AGGREGATE_TYPE, EventType
from workflow.selectors import client_for_links_get

MANAGE_MESSAGE = "Only administrators and the agency's supervisors may link clients to it."


def client_link_check_caller(*, actor: User | None) -> None:
    """``PermissionDenied`` unless ``actor`` manages some agency's client links (an admin or a supervisor)."""
    manager_scope(actor, MANAGE_MESSAGE)


@transaction.atomic
def client_link_create(
    *, actor: User | None, client_id: Any, agency: Agency, correlation_id: str | None = None
) -> tuple[ClientAgencyLink, bool]:
    """Link client ``client_id`` to ``agency``; returns ``(link, created)``. Linking twice is harmless: the
    existing link is returned and nothing is written.

    Raises ``PermissionDenied`` (not an admin, or a supervisor of another agency) and ``NotFound`` (no
    such client in the caller's scope).
    """
    client_link_check_caller(actor=actor)
    client = _client_locked(actor=actor, client_id=client_id)
    require_manager(actor, agency_id=agency.pk, message=MANAGE_MESSAGE)
    link = ClientAgencyLink.objects.filter(client=client, agency=agency).first()
    if link is not None:
        return link, False
    link = ClientAgencyLink.objects.create(client=client, agency=agency, created_by=actor)
    _link_changed(
        event_type=EventType.CLIENT_LINKED,
        actor=actor,
        client=client,
        agency_id=agency.pk,
        correlation_id=correlation_id,
    )
    return link, True


@transaction.atomic
def client_link_delete(
    *, actor: User | None, client_id: Any, agency_id: Any, correlation_id: str | None = None
) -> None:
    """Unlink client ``client_id`` from agency ``agency_id``. The agency keeps its existing tasks and plans
    for the client (they stay in its scope) but no longer sees the client or creates work for them.

    Raises ``PermissionDenied`` (as for linking) and ``NotFound`` (no such client in scope, or no link).
    """
    client_link_check_caller(actor=actor)
    client = _client_locked(actor=actor, client_id=client_id)
    link = ClientAgencyLink.objects.filter(client=client, agency_id=_link_agency_id(agency_id)).first()
    if link is None:
        raise NotFound("This client is not linked to that agency.")
    require_manager(actor, agency_id=link.agency_id, message=MANAGE_MESSAGE)
    link.delete()
    _link_changed(
        event_type=EventType.CLIENT_UNLINKED,
        actor=actor,
        client=client,
        agency_id=link.agency_id,
        correlation_id=correlation_id,
    )


def _client_locked(*, actor: User | None, client_id: Any) -> User:
    """The client in scope, its row locked: link changes of one client (and their event sequence) queue."""
    client = client_for_links_get(user=actor, client_id=client_id)
    return User.objects.select_for_update().get(pk=client.pk)


def _link_agency_id(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("This client is not linked to that agency.") from None


def _link_changed(
    *, event_type: str, actor: User | None, client: User, agency_id: Any, correlation_id: str | None
) -> OutboxEvent:
    """The one place a link change is recorded: its event and its audit-log entry."""
    aggregate_id = client_aggregate_id(client.pk)
    # The client's row is locked (``_client_locked``): no other writer of this stream runs meanwhile.
    last = OutboxEvent.objects.filter(
        aggregate_type=CLIENT_AGGREGATE_TYPE, aggregate_id=aggregate_id
    ).aggregate(last=Max("sequence"))["last"]
    event = event_append(
        event_type=event_type,
        aggregate_type=CLIENT_AGGREGATE_TYPE,
        aggregate_id=aggregate_id,
        sequence=(last or 0) + 1,
        context=EventContext.build(actor=actor, correlation_id=correlation_id),
        payload={"client_id": client.pk, "agency_id": str(agency_id)},
    )
    linked = event_type == EventType.CLIENT_LINKED
    audit_record(
        actor=actor,
        action="client_link.created" if linked else "client_link.deleted",
        object_type="client_link",
        object_id=f"{client.pk}:{agency_id}",
        agency_id=agency_id,
        before=None if linked else {"client": client.pk, "agency": str(agency_id)},
        after={"client": client.pk, "agency": str(agency_id)} if linked else None,
    )
    return event
