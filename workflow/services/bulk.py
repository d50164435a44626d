"""Bulk case work: one action applied to many tasks, each item in its own transaction.

Every item goes through the same service as a single request (``task_transition``, ``task_assign``,
``task_update``), so permissions, guards, the compare-and-swap and the one event per change apply per
item. Called outside a transaction (the API without an ``Idempotency-Key``), each item commits on its own:
its row locks end with it, and nothing later — a refused item or an unexpected error — undoes it. Called
inside an outer transaction (with a key, whose record must commit with the effects it records), each item
is a savepoint: a refused item still undoes no other, but an unexpected error rolls back the whole
request, key included, so its retry runs again rather than replaying a half. The dispatcher is kicked once
after the last item (``outbox.kick.kicks_deferred``), not once per item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction

from outbox.kick import kicks_deferred
from polaris.accounts.models import User
from polaris.audit.services import audit_record
from polaris.errors import DomainError

from .tasks import task_assign, task_transition, task_update

BULK_SERVICES: dict[str, Callable[..., Any]] = {
    "transition": task_transition,
    "assign": task_assign,
    "update": task_update,
}


def task_bulk_apply(
    *,
    actor: User | None,
    action: str,
    task_ids: Iterable[Any],
    params: dict[str, Any],
    dry_run: bool = False,
    correlation_id: str | None = None,
    selection: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Apply ``action`` with ``params`` to each task; ``[{"id", "status", "error_code"?, "message"?}]``.

    ``dry_run`` runs every item to the end (checks, guards, the writes themselves) and rolls each back:
    the results say what would happen, and nothing is written, no event and no kick.

    A real run is recorded in the audit log as one entry (``task.bulk_<action>``): the ``selection``
    filter the ids came from (if any), the parameter names (free text stays out), and the counts.
    """
    service = BULK_SERVICES[action]
    ids = list(task_ids)
    if dry_run:
        with kicks_deferred():
            return [_apply_one(service, actor, task_id, params, True, correlation_id) for task_id in ids]
    with kicks_deferred():
        results = [_apply_one(service, actor, task_id, params, False, correlation_id) for task_id in ids[:-1]]
        # The audit entry commits with the last item: once the last change is committed, so is the record
        # of the whole bulk (nothing to write after it that an outage could lose).
        with transaction.atomic():
            if ids:
                results.append(_apply_one(service, actor, ids[-1], params, False, correlation_id))
            _bulk_audit(actor=actor, action=action, params=params, selection=selection, results=results)
    return results


# Parameter values safe to record (states and ids); the rest (reasons, titles, descriptions) by name only.
_RECORDED_PARAMS = ("target_state", "assignee_id", "assignee")


def _bulk_audit(
    *,
    actor: User | None,
    action: str,
    params: dict[str, Any],
    selection: dict[str, Any] | None,
    results: list[dict[str, Any]],
) -> None:
    succeeded = sum(result["status"] == "succeeded" for result in results)
    audit_record(
        actor=actor,
        action=f"task.bulk_{action}",
        object_type="task_bulk",
        agency_id=getattr(actor, "agency_id", None),
        after={
            "filter": selection,
            "params": sorted(params),
            **{name: params[name] for name in _RECORDED_PARAMS if name in params},
            "counts": {"total": len(results), "succeeded": succeeded, "failed": len(results) - succeeded},
        },
    )


def _apply_one(
    service: Callable[..., Any],
    actor: User | None,
    task_id: Any,
    params: dict[str, Any],
    dry_run: bool,
    correlation_id: str | None,
) -> dict[str, Any]:
    try:
        if dry_run:
            with transaction.atomic():
                service(task_id=task_id, actor=actor, correlation_id=correlation_id, **params)
                transaction.set_rollback(True)
        else:
            service(task_id=task_id, actor=actor, correlation_id=correlation_id, **params)
    except DomainError as exc:
        return {"id": str(task_id), "status": "failed", "error_code": exc.error_code, "message": exc.message}
    return {"id": str(task_id), "status": "succeeded"}
