"""Retention: the registry of trims that keep tables from growing forever, and the one way they delete.

A trim is ``func(*, batch: int) -> int`` (rows deleted). Each app registers its trims in its
``AppConfig.ready()`` with ``retention_register``; beat runs them all hourly
(``outbox.retention_registered``).
Every trim deletes through ``batches_delete``: at most ``batch`` rows per transaction, chosen by primary key
first, so no lock is held longer than one small batch and writers never wait behind a long delete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import models, transaction
from django.utils import timezone

from polaris.sql.session import commit_without_flush_wait

logger = logging.getLogger(__name__)

Trim = Callable[..., int]
_trims: dict[str, Trim] = {}

DEFAULT_BATCH = 1000


def retention_register(name: str, func: Trim) -> None:
    """Add ``func(*, batch) -> int`` to the trims beat runs, under ``name`` (the key of its count)."""
    if name in _trims and _trims[name] is not func:
        raise ValueError(f"A retention trim named {name!r} is already registered.")
    _trims[name] = func


def retention_trims() -> dict[str, Trim]:
    return dict(_trims)


def retention_run(*, batch: int = DEFAULT_BATCH) -> dict[str, int]:
    """Run every registered trim; one failing trim does not stop the others (it is logged)."""
    counts = {}
    for name, trim in _trims.items():
        try:
            counts[name] = trim(batch=batch)
        except Exception:
            logger.exception("retention trim failed", extra={"trim": name})
            counts[name] = -1
    return counts


def cutoff_days(days: int) -> datetime | None:
    """The instant before which rows go, for a retention of ``days`` (0 or less: keep forever, None)."""
    return timezone.now() - timedelta(days=days) if days > 0 else None


def batches_delete(queryset: models.QuerySet, *, batch: int = DEFAULT_BATCH) -> int:
    """Delete the rows of ``queryset`` in batches of at most ``batch`` primary keys, each batch its own
    transaction (cascades included); returns how many rows of the queryset's model went."""
    model = queryset.model
    deleted = 0
    while True:
        with transaction.atomic():
            commit_without_flush_wait()  # a batch lost in a crash is deleted by the next run
            ids = list(queryset.values_list("pk", flat=True)[:batch])
            if not ids:
                return deleted
            _total, per_model = model._base_manager.filter(pk__in=ids).delete()
            deleted += per_model.get(model._meta.label, 0)
