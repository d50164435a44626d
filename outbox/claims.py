"""Claiming outbox events for dispatch, renewing the claims, handing them back.

**Claim** (one short transaction): due rows — ``pending`` rows whose ``next_attempt_at`` has
come, and ``processing`` rows whose lease ran out — oldest first, ``FOR UPDATE SKIP LOCKED`` so
concurrent workers take disjoint batches, and only the first undone event of each aggregate (an
earlier ``pending``/``processing`` event of the same aggregate holds later ones back; ``dead`` and
``dispatched`` ones do not). Claimed rows become ``processing``; their ``next_attempt_at`` is set to
the lease expiry, so an event whose worker died is simply due again later (one index serves both).
``attempts`` counts claims, so an event that kills its worker every time still ends up dead.
The lease is short (``OUTBOX_LEASE_SECONDS``, seconds): while the batch runs, a heartbeat thread
(``polaris.leases``) renews it every ``OUTBOX_HEARTBEAT_SECONDS``, fenced by ``attempts`` so it only
renews claims that are still this worker's. A killed worker stops renewing and its events are due
again within one lease; a slow but live one keeps them.

Array parameters go as ``%b`` (binary): psycopg's text format quotes every element, several times slower.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from outbox.models import OutboxEvent
from polaris.leases import renew_lock_timeout
from polaris.sql.precompiled import rows_as_instances

PENDING = OutboxEvent.Status.PENDING.value
PROCESSING = OutboxEvent.Status.PROCESSING.value

_TABLE = OutboxEvent._meta.db_table

# Named, not ``claimed.*``: statements are prepared per connection (``DB_PREPARE_THRESHOLD``), and a
# prepared ``*`` fails ("cached plan must not change result type") once a migration adds a column.
_COLUMNS = ", ".join(f"claimed.{field.column}" for field in OutboxEvent._meta.concrete_fields)

# Backed by outbox_due_idx (next_attempt_at WHERE status IN pending/processing) for the scan and by
# outbox_undone_aggregate_idx for the "no earlier undone event of this aggregate" probe. ``= ANY(ARRAY(…))``
# rather than ``IN (…)``: with IN the planner hash-joins the whole table (a sequential scan per claim);
# with an array it updates the picked rows through the primary key.
_CLAIM_SQL = f"""
UPDATE {_TABLE} AS claimed
   SET status = %(processing)s,
       attempts = claimed.attempts + 1,
       next_attempt_at = %(lease_until)s,
       locked_until = %(lease_until)s
 WHERE claimed.id = ANY(ARRAY(
        SELECT due.id
          FROM {_TABLE} AS due
         WHERE due.status IN (%(pending)s, %(processing)s)
           AND due.next_attempt_at <= %(now)s
           AND NOT EXISTS (
                SELECT 1
                  FROM {_TABLE} AS earlier
                 WHERE earlier.aggregate_type = due.aggregate_type
                   AND earlier.aggregate_id = due.aggregate_id
                   AND earlier.sequence < due.sequence
                   AND earlier.status IN (%(pending)s, %(processing)s)
           )
         ORDER BY due.next_attempt_at
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED
       ))
RETURNING {_COLUMNS}
"""  # noqa: S608  (table names come from model metadata, values are parameters)


# Renew this worker's claims: the same rows, still processing, claimed by the same claim (``attempts``
# changes with every claim, so a claim that lapsed and was taken by another worker is left alone).
_RENEW_SQL = f"""
UPDATE {_TABLE} AS claimed
   SET next_attempt_at = %(lease_until)s,
       locked_until = %(lease_until)s
  FROM unnest(%(ids)b::uuid[], %(attempts)b::integer[]) AS mine(id, attempts)
 WHERE claimed.id = mine.id
   AND claimed.attempts = mine.attempts
   AND claimed.status = %(processing)s
"""  # noqa: S608  (table names come from model metadata, values are parameters)


def bookkeeping_commit() -> None:
    """Let this transaction commit without waiting for its WAL flush (``synchronous_commit = off``).

    Only for the claim and the settle: if the database crashed and lost one of them, the event would
    simply be claimed or delivered again, which the lease and the ledger make harmless. It never makes
    the database inconsistent. Handler transactions (effects + ledger) keep full durability.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


def outbox_claim(
    *, limit: int, now: datetime | None = None, lease_seconds: float | None = None
) -> list[OutboxEvent]:
    """Claim up to ``limit`` due events (see the module docstring); returns them in stream order.

    Runs as its own short transaction so the row locks are held only for the claim itself; from then on
    the ``processing`` status and the lease keep other claimers away.
    """
    now = now or timezone.now()
    lease = settings.OUTBOX_LEASE_SECONDS if lease_seconds is None else lease_seconds
    params: dict[str, Any] = {
        "pending": PENDING,
        "processing": PROCESSING,
        "now": now,
        "lease_until": now + timedelta(seconds=lease),
        "limit": limit,
    }
    with transaction.atomic():
        bookkeeping_commit()
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, params)
            events = rows_as_instances(OutboxEvent, cursor.fetchall(), alias=connection.alias)
    events.sort(key=lambda event: (event.occurred_at, event.aggregate_id, event.sequence))
    return events


def outbox_renew(*, events: list[OutboxEvent], lease_seconds: float | None = None) -> int:
    """Extend the lease of claims this worker still holds; returns how many it renewed."""
    lease = settings.OUTBOX_LEASE_SECONDS if lease_seconds is None else lease_seconds
    params: dict[str, Any] = {
        "lease_until": timezone.now() + timedelta(seconds=lease),
        "ids": [event.id for event in events],
        "attempts": [event.attempts for event in events],
        "processing": PROCESSING,
    }
    with transaction.atomic():
        bookkeeping_commit()
        renew_lock_timeout()
        with connection.cursor() as cursor:
            cursor.execute(_RENEW_SQL, params)
            return cursor.rowcount


def outbox_release(*, events: list[OutboxEvent]) -> int:
    """Hand claimed-but-unhandled events back (due now, the claim not counted), e.g. on a soft time limit."""
    ids = [event.id for event in events]
    if not ids:
        return 0
    return OutboxEvent.objects.filter(pk__in=ids, status=PROCESSING).update(
        status=PENDING, attempts=F("attempts") - 1, next_attempt_at=timezone.now(), locked_until=None
    )
