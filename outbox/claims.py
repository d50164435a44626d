"""Claiming outbox events for dispatch, renewing the claims, handing them back.

**Claim** (one short transaction): due rows — ``pending`` rows whose ``next_attempt_at`` has
come, and ``processing`` rows whose lease ran out — oldest first, ``FOR UPDATE SKIP LOCKED`` so
concurrent workers take disjoint batches, and only the first undone event of each aggregate (an
earlier ``pending``/``processing`` event of the same aggregate holds later ones back; ``dead`` and
``dispatched`` ones do not). Claimed rows become ``processing``; their ``next_attempt_at`` is set to
the lease expiry, so an event whose worker died is simply due again later (one index serves both).
``attempts`` counts claims, so an event that kills its worker every time still ends up dead.
The claim, renewal and release are the project's one lease primitive (``polaris.leases.Lease``, its
statements in ``polaris.sql.claims``), with the per-aggregate rule as its stream variant.
The lease is short (``OUTBOX_LEASE_SECONDS``, seconds): while the batch runs, a heartbeat thread
(``polaris.leases``) renews it every ``OUTBOX_HEARTBEAT_SECONDS``, fenced by ``attempts`` so it only
renews claims that are still this worker's. A killed worker stops renewing and its events are due
again within one lease; a slow but live one keeps them.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outbox.models import OutboxEvent
from polaris.leases import Lease, lease_until
from polaris.sql.session import commit_without_flush_wait

PENDING = OutboxEvent.Status.PENDING.value
PROCESSING = OutboxEvent.Status.PROCESSING.value

# Claims of outbox events: the project's one lease primitive, with the per-aggregate rule. Its due scan is
# backed by outbox_due_idx (next_attempt_at WHERE status IN pending/processing), the per-aggregate probe by
# outbox_undone_aggregate_idx.
OUTBOX_LEASE = Lease(
    model=OutboxEvent,
    free=PENDING,
    held=PROCESSING,
    stream=("aggregate_type", "aggregate_id", "sequence"),
)


def bookkeeping_commit() -> None:
    """Let this transaction commit without waiting for its WAL flush (``synchronous_commit = off``).

    Only for the claim and the settle: if the database crashed and lost one of them, the event would
    simply be claimed or delivered again, which the lease and the ledger make harmless. It never makes
    the database inconsistent. Handler transactions (effects + ledger) keep full durability.
    """
    commit_without_flush_wait()


def outbox_claim(
    *, limit: int, now: datetime | None = None, lease_seconds: float | None = None
) -> list[OutboxEvent]:
    """Claim up to ``limit`` due events (see the module docstring); returns them in stream order.

    Runs as its own short transaction so the row locks are held only for the claim itself; from then on
    the ``processing`` status and the lease keep other claimers away.
    """
    now = now or timezone.now()
    lease = settings.OUTBOX_LEASE_SECONDS if lease_seconds is None else lease_seconds
    with transaction.atomic():
        bookkeeping_commit()
        events = OUTBOX_LEASE.claim_batch(now=now, until=lease_until(lease, now=now), limit=limit)
    events.sort(key=lambda event: (event.occurred_at, event.aggregate_id, event.sequence))
    return events


def outbox_renew(*, events: list[OutboxEvent], lease_seconds: float | None = None) -> int:
    """Extend the lease of claims this worker still holds; returns how many it renewed."""
    lease = settings.OUTBOX_LEASE_SECONDS if lease_seconds is None else lease_seconds
    with transaction.atomic():
        bookkeeping_commit()
        return OUTBOX_LEASE.renew([(event.id, event.attempts) for event in events], until=lease_until(lease))


def outbox_release(*, events: list[OutboxEvent]) -> int:
    """Hand claimed-but-unhandled events back (due now, the claim not counted), e.g. on a soft time limit."""
    return OUTBOX_LEASE.release([event.id for event in events])
