"""Retention: the registry of trims that keep tables from growing forever, and the one way they delete.

A trim is ``func(*, batch: int) -> int`` (rows deleted). Each app registers its trims in its
``AppConfig.ready()`` with ``retention_register``; beat runs them all hourly
(``outbox.retention_registered``).
Every trim deletes through ``batches_delete``: at most ``batch`` rows per transaction, chosen by primary key
first, so no lock is held longer than one small batch and writers never wait behind a long delete.

Trims are paced (``Pace``): after each batch a trim rests so that its batches take at most
``RETENTION_DUTY_CYCLE`` of the wall time — a backlog (retention switched on over years of history) is
worked off beside the live writers instead of taking the machine's cores from them — and a run stops
after ``RETENTION_RUN_SECONDS`` (within the beat task's time limit); the next hourly run goes on from there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from polaris.sql.session import commit_without_flush_wait

logger = logging.getLogger(__name__)

Trim = Callable[..., int]
_trims: dict[str, Trim] = {}

DEFAULT_BATCH = 1000
MAX_REST_SECONDS = 5.0  # one slow batch (a lock wait) does not put the trim to sleep for long

# The monotonic instant a run of every trim must end by (``retention_run`` sets it; one trim run on its
# own gets ``RETENTION_RUN_SECONDS`` from its first batch).
_run_deadline: ContextVar[float | None] = ContextVar("retention_run_deadline", default=None)


class Pace:
    """A trim's pace: ``rest()`` after each batch sleeps so that batches take at most the duty cycle of the
    wall time, and says whether the run still has time for another batch."""

    def __init__(self, *, duty: float | None = None, seconds: float | None = None) -> None:
        self.duty = settings.RETENTION_DUTY_CYCLE if duty is None else duty
        now = time.monotonic()
        deadline = _run_deadline.get()
        if seconds is not None or deadline is None:
            deadline = now + (settings.RETENTION_RUN_SECONDS if seconds is None else seconds)
        self.deadline = deadline
        self.batch_started = now

    def rest(self) -> bool:
        """Call after a batch: rest in proportion to its work; ``False`` once the run's time is up."""
        worked = time.monotonic() - self.batch_started
        if 0 < self.duty < 1:
            rest = min(worked * (1 / self.duty - 1), MAX_REST_SECONDS, self.deadline - time.monotonic())
            if rest > 0:
                time.sleep(rest)
        self.batch_started = time.monotonic()
        return self.batch_started < self.deadline


def retention_register(name: str, func: Trim) -> None:
    """Add ``func(*, batch) -> int`` to the trims beat runs, under ``name`` (the key of its count)."""
    if name in _trims and _trims[name] is not func:
        raise ValueError(f"A retention trim named {name!r} is already registered.")
    _trims[name] = func


def retention_trims() -> dict[str, Trim]:
    return dict(_trims)


def retention_run(*, batch: int = DEFAULT_BATCH) -> dict[str, int]:
    """Run every registered trim, all within one ``RETENTION_RUN_SECONDS``; one failing trim does not stop
    the others (it is logged)."""
    counts = {}
    token = _run_deadline.set(time.monotonic() + settings.RETENTION_RUN_SECONDS)
    try:
        for name, trim in _trims.items():
            try:
                counts[name] = trim(batch=batch)
            except Exception:
                logger.exception("retention trim failed", extra={"trim": name})
                counts[name] = -1
    finally:
        _run_deadline.reset(token)
    return counts


def cutoff_days(days: int) -> datetime | None:
    """The instant before which rows go, for a retention of ``days`` (0 or less: keep forever, None)."""
    return timezone.now() - timedelta(days=days) if days > 0 else None


def batches_delete(queryset: models.QuerySet, *, batch: int = DEFAULT_BATCH) -> int:
    """Delete the rows of ``queryset`` in batches of at most ``batch`` primary keys, each batch its own
    transaction (cascades included), at the retention's pace; returns how many rows of the queryset's
    model went (the rest, when the run's time is up, goes in the next run)."""
    model = queryset.model
    deleted = 0
    pace = Pace()
    while True:
        with transaction.atomic():
            commit_without_flush_wait()  # a batch lost in a crash is deleted by the next run
            ids = list(queryset.values_list("pk", flat=True)[:batch])
            if not ids:
                return deleted
            _total, per_model = model._base_manager.filter(pk__in=ids).delete()
            deleted += per_model.get(model._meta.label, 0)
        if not pace.rest():
            return deleted
