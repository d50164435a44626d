"""The one claim/lease primitive: claim due rows, hold them under a lease, renew it, hand them back.

Two kinds of claim share it:

- **Claims under a lease** (``Lease``: the outbox dispatcher's batches, webhook deliveries). A claimed row
  becomes ``held``, ``attempts`` counts the claim (and fences renewals and settles: a claim that lapsed and
  was taken by another worker is left alone), and ``locked_until``/``next_attempt_at`` hold the expiry, so
  one partial index on ``next_attempt_at`` finds both due rows and lapsed claims. ``Lease.claim`` claims rows
  a caller's queryset names (compare-and-swap: act only if it changed a row); ``Lease.claim_batch`` picks a
  batch of due rows itself (``FOR UPDATE SKIP LOCKED``, optionally only the first undone row of each
  stream); ``Lease.renew`` and ``Lease.release`` keep and give back what was claimed.
- **Claims for one transaction** (``claim_due``: timers, the SLA scan): due rows locked ``FOR UPDATE SKIP
  LOCKED`` until the caller's transaction ends, which is their lease.

The statements are ``polaris.sql.claims``'s. Due conditions stay each caller's own (the WHERE shape its
partial index matches).

**Keeping a short lease alive while its holder works: a heartbeat thread.**

A worker that claims rows under a lease (the outbox dispatcher's batches) wants two things at once: a
short lease, so rows whose worker was killed are due again within seconds, and never to lose a claim it is
still working on, however slow the work. ``LeaseHeartbeat`` gives both: while the ``with`` block runs, a
daemon thread calls ``renew()`` every ``every`` seconds. A killed process takes its thread with it, so the
lease lapses within one lease; a live one keeps renewing between (and during) slow handler calls.

The thread uses its own database connection (Django's connections are per thread), so a renewal commits
at once even while the holder is inside a long transaction; it connects only once the first beat is due,
so work that finishes within ``every`` seconds costs a thread start and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from django.db import connection, connections, models
from django.db.models import F, QuerySet
from django.utils import timezone

from polaris.sql.claims import lease_claim_sql, lease_renew_sql
from polaris.sql.precompiled import rows_as_instances
from polaris.sql.session import transaction_settings

logger = logging.getLogger(__name__)


def renew_lock_timeout(seconds: float = 1.0) -> None:
    """For a renewal's transaction: give up on a row lock after ``seconds`` rather than wait for it.

    A heartbeat must never hang: its holder joins the thread when the work ends. A renewal that cannot
    get its rows now fails, is logged, and is tried again at the next beat.
    """
    transaction_settings(lock_timeout=f"{int(seconds * 1000)}ms")


def claim_due(queryset: QuerySet[Any], *, order_by: str, limit: int) -> list[Any]:
    """Up to ``limit`` rows of ``queryset`` (the caller's due condition), ``order_by`` first, locked
    ``FOR UPDATE SKIP LOCKED`` (its own table's rows only) until the caller's transaction ends: concurrent
    claimers take disjoint rows and none waits. Call inside ``transaction.atomic()``."""
    return list(queryset.select_for_update(skip_locked=True, of=("self",)).order_by(order_by)[:limit])


@dataclass(frozen=True)
class Lease:
    """Claims on rows of ``model`` (columns ``status``, ``attempts``, ``next_attempt_at``, ``locked_until``):
    a ``free`` row (waiting) becomes ``held`` while claimed, for ``seconds`` unless renewed."""

    model: type[models.Model]
    free: str
    held: str
    # The per-stream rule of ``claim_batch``: (kind, key, position) fields; only the first undone row of a
    # stream is claimable.
    stream: tuple[str, str, str] | None = None

    def claim(self, queryset: QuerySet[Any], *, until: datetime) -> int:
        """Claim the rows ``queryset`` names (its filters are the compare-and-swap: due, free to go) until
        ``until``; returns how many it claimed."""
        return queryset.update(
            status=self.held, attempts=F("attempts") + 1, locked_until=until, next_attempt_at=until
        )

    def claim_sql(self) -> str:
        """The statement of ``claim_batch`` (parameters: ``pending``, ``processing``, ``now``,
        ``lease_until``, ``limit``)."""
        return lease_claim_sql(self.model, self.stream)

    def claim_batch(self, *, now: datetime, until: datetime, limit: int) -> list[Any]:
        """Claim up to ``limit`` due rows (free and due, or held with a lapsed lease), oldest first, skipping
        rows another claimer has locked, in the caller's transaction; returns them as instances."""
        params: dict[str, Any] = {
            "pending": self.free,
            "processing": self.held,
            "now": now,
            "lease_until": until,
            "limit": limit,
        }
        with connection.cursor() as cursor:
            cursor.execute(self.claim_sql(), params)
            return rows_as_instances(self.model, cursor.fetchall(), alias=connection.alias)

    def renew(self, claims: Sequence[tuple[Any, int]], *, until: datetime) -> int:
        """Extend the claims ``(pk, attempts)`` this holder still has to ``until`` (in the caller's
        transaction, giving up quickly on a locked row: ``renew_lock_timeout``); returns how many."""
        renew_lock_timeout()
        pk_type = str(self.model._meta.pk.rel_db_type(connection))
        params: dict[str, Any] = {
            "lease_until": until,
            "ids": [pk for pk, _ in claims],
            "attempts": [attempts for _, attempts in claims],
            "processing": self.held,
        }
        with connection.cursor() as cursor:
            cursor.execute(lease_renew_sql(self.model, pk_type), params)
            return cursor.rowcount

    def release(self, pks: Sequence[Any]) -> int:
        """Hand claimed rows back: free and due now, the claim not counted."""
        if not pks:
            return 0
        return self.model._default_manager.filter(pk__in=pks, status=self.held).update(
            status=self.free, attempts=F("attempts") - 1, next_attempt_at=timezone.now(), locked_until=None
        )


def lease_until(seconds: float, *, now: datetime | None = None) -> datetime:
    """The expiry of a lease of ``seconds`` taken ``now``."""
    return (now or timezone.now()) + timedelta(seconds=seconds)


class LeaseHeartbeat:
    """``with LeaseHeartbeat(renew=…, every=…):`` renews a lease in the background until the block ends.

    ``renew`` runs in the heartbeat thread and returns how many claims it renewed (logged when it is
    fewer than ``expected``: those claims were lost, another worker may hold them now). A failing renewal
    is logged and retried at the next beat; ``every <= 0`` turns the heartbeat off.
    """

    def __init__(
        self, *, renew: Callable[[], int], every: float, expected: int = 0, name: str = "lease"
    ) -> None:
        self._renew = renew
        self._every = every
        self._expected = expected
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def __enter__(self) -> LeaseHeartbeat:
        if self._every > 0:
            self._thread = threading.Thread(target=self._run, name=f"{self._name}-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._every):
                try:
                    renewed = self._renew()
                except Exception:
                    logger.warning(
                        "%s heartbeat failed; retrying at the next beat", self._name, exc_info=True
                    )
                    continue
                self.beats += 1
                if renewed < self._expected:
                    logger.warning(
                        "%s heartbeat renewed %s of %s claims", self._name, renewed, self._expected
                    )
                    self._expected = renewed  # said once per loss
        finally:
            connections.close_all()  # this thread's connections only
