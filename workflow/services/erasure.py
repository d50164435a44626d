"""Erasing a client's personal data (``POST /api/workflow/clients/{id}/erase``), and the workflow's erasers.

``client_erase`` runs every eraser the apps registered (``polaris.erasure``) in ONE transaction, then
anonymises the account row and appends one ``ClientErased`` event (aggregate ``client``: the client id and
the counts, no personal data). One transaction, not resumable batches: a client's work is bounded (the
benchmark's 1,000 tasks and 20,000 events take well under the 5 s budget), every row it touches is the
client's own (writers of other clients never wait on it), and an erasure is then all or nothing: no
half-erased client for a retry to finish. Rows are rewritten in place: no event is deleted, so every
aggregate's sequence stays gap-free, and states, timings, counts and SLA figures are untouched.

The workflow's own erasers are ``ERASED_FIELDS`` (the free-text columns of tasks and plans, one line per
model; a new column is one more entry) and the events of the client's tasks and plans.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from outbox.append import event_append
from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.access import require_admin
from polaris.accounts.models import User, client_aggregate_id
from polaris.audit.services import audit_record
from polaris.erasure import client_anonymise, eraser_register, erasers, rows_erase
from polaris.errors import NotFound
from workflow.events import CLIENT_AGGREGATE_TYPE as CLIENT_AGGREGATE
from workflow.events import EventType
from workflow.models import ActionPlan, Task
from workflow.services.saved_views import saved_views_erase

# The free-text columns of the client's work.
ERASED_FIELDS: list[tuple[type[models.Model], tuple[str, ...]]] = [
    (Task, ("title", "description", "blocked_reason", "staff_notes")),
    (ActionPlan, ("title", "description")),
]


def client_work_events(client_id: int) -> models.QuerySet[OutboxEvent]:
    """The events of the client's tasks and plans (served by the sequence's unique index)."""
    tasks = Task.objects.filter(client_id=client_id).values("pk")
    plans = ActionPlan.objects.filter(client_id=client_id).values("pk")
    return OutboxEvent.objects.filter(
        models.Q(aggregate_type=Task.aggregate_type, aggregate_id__in=tasks)
        | models.Q(aggregate_type=ActionPlan.aggregate_type, aggregate_id__in=plans)
    )


def _work_erase(model: type[models.Model], fields: tuple[str, ...]):
    def erase(*, client_id: int, dry_run: bool) -> int:
        rows = model._default_manager.filter(client_id=client_id)
        return rows_erase(rows, text_fields=fields, dry_run=dry_run)

    return erase


def work_events_erase(*, client_id: int, dry_run: bool) -> int:
    """Scrub the payloads (and dead letters' errors) of the client's task and plan events."""
    return rows_erase(
        client_work_events(client_id), text_fields=("last_error",), json_fields=("payload",), dry_run=dry_run
    )


def workflow_erasers_register() -> None:
    """Called from ``WorkflowConfig.ready()``."""
    for model, fields in ERASED_FIELDS:
        eraser_register(model._meta.db_table, _work_erase(model, fields))
    eraser_register("outbox_events", work_events_erase)
    eraser_register("saved_views", saved_views_erase)


def client_erase(
    *, client_id: int, actor: User | None, dry_run: bool = False, correlation_id: str | None = None
) -> dict[str, Any]:
    """Erase (or, with ``dry_run``, count) the personal data of client ``client_id`` everywhere it lives.

    Admins only (``PermissionDenied``); an unknown id or a user who is not a client is ``NotFound``.
    Returns ``{"client_id", "dry_run", "counts": {eraser: rows}, "event_id"}`` (no event on a dry run).
    """
    require_admin(actor, "Only administrators may erase a client's data.")
    with transaction.atomic():
        # The row lock serialises two erasures of one client (and the ClientErased sequence).
        client = User.objects.select_for_update().filter(pk=client_id, role=User.Role.CLIENT).first()
        if client is None:
            raise NotFound("No such client.")
        counts = {name: erase(client_id=client_id, dry_run=dry_run) for name, erase in erasers().items()}
        counts["accounts_user"] = client_anonymise(client_id=client_id, dry_run=dry_run)
        result: dict[str, Any] = {
            "client_id": client_id,
            "dry_run": dry_run,
            "counts": counts,
            "event_id": None,
        }
        if dry_run:
            return result
        aggregate_id = client_aggregate_id(client_id)
        last = (
            OutboxEvent.objects.filter(aggregate_type=CLIENT_AGGREGATE, aggregate_id=aggregate_id)
            .order_by("-sequence")
            .values_list("sequence", flat=True)
            .first()
        )
        event = event_append(
            event_type=EventType.CLIENT_ERASED,
            aggregate_type=CLIENT_AGGREGATE,
            aggregate_id=aggregate_id,
            sequence=(last or 0) + 1,
            context=EventContext.build(actor=actor, correlation_id=correlation_id),
            payload={"client_id": client_id, "counts": counts},
        )
        result["event_id"] = str(event.pk)
        audit_record(
            actor=actor, action="client.erased", object_type="user", object_id=client_id, after=counts
        )
        return result
