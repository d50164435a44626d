"""Worker profile writes: skills, capacity, away and delegate (a supervisor of the worker's agency or an
admin; audited ``worker_profile.updated``)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from polaris.access import is_admin, manager_scope, require_manager
from polaris.accounts.models import User
from polaris.audit.services import audit_record, audit_snapshot
from polaris.errors import NotFound, ValidationFailed

from ..models import WorkerProfile
from ..selectors import staff_of

PROFILE_FIELDS = ("service_areas", "task_types", "capacity", "away", "delegate")


def worker_get(*, actor: User | None, user_id: Any) -> User:
    """A staff member ``actor`` manages: an admin any agency's, a supervisor their own (others: 404/403)."""
    scope = manager_scope(actor)
    try:
        pk = int(user_id)
    except (TypeError, ValueError):
        raise NotFound("User not found.") from None
    if not 0 < pk < 2**63:  # beyond PostgreSQL's bigint: no such user
        raise NotFound("User not found.")
    users = User.objects.filter(pk=pk, role__in=User.STAFF_ROLES)
    if scope is not None:
        users = users.filter(agency_id=scope)
    user = users.first()
    if user is None:
        raise NotFound("User not found.")
    return user


@transaction.atomic
def worker_profile_update(*, actor: User | None, user_id: Any, changes: dict[str, Any]) -> WorkerProfile:
    """Change a worker's routing profile. A delegate is another active staff member of the same agency; a
    delegate without ``away`` is kept for the next absence. Audited with before and after."""
    worker = worker_get(actor=actor, user_id=user_id)
    require_manager(actor, agency_id=worker.agency_id)
    profile, _ = WorkerProfile.objects.get_or_create(user=worker)
    profile = WorkerProfile.objects.select_for_update().get(pk=worker.pk)
    delegate = changes.get("delegate")
    if delegate is not None and (
        delegate.pk == worker.pk or not staff_of(worker.agency_id).filter(pk=delegate.pk).exists()
    ):
        raise ValidationFailed(
            details={
                "delegate": [
                    f"User {delegate.pk} does not exist among the other active staff of the worker's agency."
                ]
            }
        )
    before = audit_snapshot(profile, PROFILE_FIELDS)
    for name, value in changes.items():
        setattr(profile, name, value)
    profile.save()
    audit_record(
        actor=actor,
        action="worker_profile.updated",
        obj=profile,
        object_type="worker_profile",
        object_id=worker.pk,
        agency_id=worker.agency_id,
        before=before,
        after=audit_snapshot(profile, PROFILE_FIELDS),
    )
    return profile


def profile_viewable(*, actor: User | None, user_id: Any) -> User:
    """The worker whose profile ``actor`` may read (the same rule as changing it)."""
    worker = worker_get(actor=actor, user_id=user_id)
    if not is_admin(actor):
        require_manager(actor, agency_id=worker.agency_id)
    return worker
