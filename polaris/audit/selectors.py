"""Reading the audit log: admins all of it, a supervisor their agency's entries, anyone else refused."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from polaris.access import manager_scope
from polaris.accounts.models import User

from .models import AuditEntry


def audit_list(*, user: User | None, filters: dict[str, Any] | None = None) -> QuerySet[AuditEntry]:
    """Entries newest first in ``user``'s scope (``PermissionDenied`` for agents and clients), filtered by
    ``actor`` (user id), ``object_type``, ``object_id``, ``since`` and ``until`` ([since, until))."""
    agency_id = manager_scope(user, "Only administrators and supervisors may read the audit log.")
    entries = AuditEntry.objects.order_by("-at", "-id")
    if agency_id is not None:
        entries = entries.filter(agency_id=agency_id)
    filters = filters or {}
    if filters.get("actor") is not None:
        entries = entries.filter(actor_id=filters["actor"])
    for name in ("object_type", "object_id"):
        if filters.get(name):
            entries = entries.filter(**{name: filters[name]})
    if filters.get("since") is not None:
        entries = entries.filter(at__gte=filters["since"])
    if filters.get("until") is not None:
        entries = entries.filter(at__lt=filters["until"])
    return entries
