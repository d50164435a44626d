"""The one writer of audit entries: ``audit_record``, called inside the transaction of the change it records.

Secrets never enter the log: any key naming a secret, password or token is replaced by ``"[redacted]"``
wherever it appears in ``before``/``after`` (a secret's rotation is recorded as the fact, not the values).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from polaris.accounts.models import Agency
from polaris.correlation import get_correlation_id
from polaris.sql.session import transaction_settings

from .models import AuditEntry

REDACTED = "[redacted]"
# Values that say what happened to a secret without being one: kept as they are.
MARKERS = frozenset({REDACTED, "rotated", "set", "changed"})
_SENSITIVE = ("secret", "password", "token", "api_key")
REWRITE_SETTING = "polaris.audit_rewrite"


def _sensitive(key: str) -> bool:
    key = key.lower()
    return any(key == word or key.endswith(word) or key.startswith(word + "_") for word in _SENSITIVE)


def audit_redact(value: Any) -> Any:
    """``value`` as JSON, with every sensitive key's value replaced (recursively)."""
    if isinstance(value, dict):
        return {
            str(key): (item if item in MARKERS else REDACTED) if _sensitive(str(key)) else audit_redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [audit_redact(item) for item in value]
    return value


class _Encoder(DjangoJSONEncoder):
    """Django's JSON encoder (dates, decimals, UUIDs), plus model instances as their primary key."""

    def default(self, o: Any) -> Any:
        if isinstance(o, models.Model):
            return o.pk
        return super().default(o)


def audit_snapshot(obj: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The recorded state of ``obj``: the named fields (foreign keys by their ``_id``), as JSON values."""
    values = {name: getattr(obj, name) for name in fields}
    return json.loads(json.dumps(values, cls=_Encoder))


def _encode(value: Any) -> Any:
    return None if value is None else json.loads(json.dumps(audit_redact(value), cls=_Encoder))


def _agency_known(agency_id: Any) -> Any:
    """``agency_id`` if it names an agency (it may come from an event payload), else ``None``."""
    if agency_id is None or isinstance(agency_id, Agency):
        return getattr(agency_id, "pk", None)
    try:
        return agency_id if Agency.objects.filter(pk=agency_id).exists() else None
    except (ValidationError, ValueError, TypeError):
        return None


def _actor_pk(actor: Any) -> tuple[Any, str]:
    if actor is None or not getattr(actor, "pk", None):
        return None, ""
    return actor.pk, getattr(actor, "username", "") or ""


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    agency_id: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry: ``actor`` (a user, or ``None`` for the system) did ``action`` (``"trigger.created"``)
    to ``obj`` (or ``object_type`` + ``object_id``) of ``agency_id`` (taken from ``obj.agency_id`` when not
    given; ``None``: global). Call it inside the change's transaction; values are redacted and stored as
    JSON. The correlation id is the one of the work in hand."""
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = obj.pk if object_id is None else object_id
        if agency_id is None:
            agency_id = getattr(obj, "agency_id", None)
    if not object_type:
        raise ValueError("audit_record needs obj or object_type.")
    actor_id, actor_username = _actor_pk(actor)
    return AuditEntry.objects.create(
        actor_id=actor_id,
        actor_username=actor_username,
        agency_id=_agency_known(agency_id),
        action=action,
        object_type=object_type,
        object_id="" if object_id is None else str(object_id),
        before=_encode(before),
        after=_encode(after),
        correlation_id=(get_correlation_id() or "")[:64],
    )


def audit_rewrite_allow() -> None:
    """Let this transaction rewrite or delete audit entries (erasure of personal data, retention): the
    database trigger refuses it otherwise. Use it only inside ``transaction.atomic()``."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_rewrite_allow() needs a transaction.")
    transaction_settings(**{REWRITE_SETTING: "on"})


def audit_entries_erase(*, client_id: int, dry_run: bool) -> int:
    """Erasure (``polaris.erasure``): the entries about client ``client_id``'s account keep what changed but
    not who they are — its username becomes ``erased-<id>`` in ``before``/``after`` and as the actor's
    name. Returns how many entries change (none on a dry run)."""
    erased_name = f"erased-{client_id}"
    about = AuditEntry._base_manager.filter(object_type="user", object_id=str(client_id))
    acted = AuditEntry._base_manager.filter(actor_id=client_id).exclude(actor_username=erased_name)
    changed = [
        entry
        for entry in about
        if any(
            (side or {}).get("username") not in (None, erased_name) for side in (entry.before, entry.after)
        )
    ]
    count = len({entry.pk for entry in changed} | set(acted.values_list("pk", flat=True)))
    if dry_run or not count:
        return count
    audit_rewrite_allow()
    for entry in changed:
        for side in (entry.before, entry.after):
            if side and "username" in side:
                side["username"] = erased_name
        AuditEntry._base_manager.filter(pk=entry.pk).update(before=entry.before, after=entry.after)
    acted.update(actor_username=erased_name)
    return count


def audit_entries_trim(*, batch: int) -> int:
    """Retention (``polaris.retention``): entries older than ``AUDIT_RETENTION_DAYS`` (0 keeps them
    forever) go, oldest first, in batches of ``batch``, each its own short transaction."""
    days = settings.AUDIT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while True:
        with transaction.atomic():
            audit_rewrite_allow()
            ids = list(
                AuditEntry._base_manager.filter(at__lt=cutoff)
                .order_by("at", "id")
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                return deleted
            AuditEntry._base_manager.filter(pk__in=ids).delete()
            deleted += len(ids)
