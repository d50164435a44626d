"""The breach/warning scan: breach running records past due and warn those past a warning percentage.

Each batch is its own transaction. Breaches are claimed with one compare-and-swap ``UPDATE … WHERE status =
'running'`` over ``FOR UPDATE SKIP LOCKED`` rows; warnings by locking due records with ``SKIP LOCKED``. So
concurrent scans split the work and never repeat it, and both claims read partial indexes on running
records: the cost follows what is due, not the table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from polaris.metrics import SLA_RECORDS_BREACHED
from workflow.dispatch.kick import kick_after_commit
from workflow.events import EventContext
from workflow.models import OutboxEvent
from workflow.services.outbox import event_append

from .clock import sla_record_schedule, sla_record_warning_instant
from .events import SLAEventType, sla_breach_payload, sla_warning_payload
from .models import SLARecord, SLARecordStatus

logger = logging.getLogger(__name__)

Status = SLARecordStatus

# Records read back and events inserted per statement (a bound parameter per column per row: keep well under
# PostgreSQL's 65,535 whatever SLA_SCAN_BATCH_SIZE is).
_CHUNK = 1000


@dataclass
class ScanResult:
    breached: int = 0
    warned: int = 0


# The claim: a compare-and-swap on status. Concurrent scans skip each other's locked rows and split the work;
# a row another scan has just breached no longer matches ``status = 'running'`` when re-checked.
_CLAIM_BREACHES_SQL = """
UPDATE {record} AS r
   SET status = 'breached', breached_at = r.due_at, next_warning_at = NULL, version = r.version + 1
 WHERE r.id IN (
           SELECT id FROM {record}
            WHERE status = 'running' AND due_at <= %(now)s
            ORDER BY due_at
            LIMIT %(limit)s
              FOR UPDATE SKIP LOCKED)
   AND r.status = 'running' AND r.due_at <= %(now)s
RETURNING r.id
"""


def _claim_breaches(*, now: datetime, limit: int, context: EventContext) -> int:
    """One batch, in the caller's transaction: CAS-claim due running records, then write their events.

    The payloads are built in Python by ``sla.events.sla_breach_payload``, the same function a breach found
    at a transition uses; the claimed rows are read back (locked by this transaction) in chunks and their
    events inserted in bulk.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_BREACHES_SQL.format(record=SLARecord._meta.db_table), {"now": now, "limit": limit}
        )
        claimed = [row[0] for row in cursor.fetchall()]
    for start in range(0, len(claimed), _CHUNK):
        records = SLARecord.objects.select_related("task", "config").filter(
            pk__in=claimed[start : start + _CHUNK]
        )
        OutboxEvent.objects.bulk_create(
            [
                OutboxEvent(
                    event_type=SLAEventType.SLA_BREACHED,
                    aggregate_type=SLARecord.aggregate_type,
                    aggregate_id=record.pk,
                    sequence=record.version,
                    occurred_at=now,
                    next_attempt_at=now,
                    actor=None,
                    correlation_id=context.correlation_id,
                    causation_id=context.causation_id,
                    depth=context.depth,
                    payload=sla_breach_payload(
                        record=record, task=record.task, config_name=record.config.name, detected_by="scan"
                    ),
                )
                for record in records
            ]
        )
    count = len(claimed)
    if count:
        kick_after_commit()
        transaction.on_commit(lambda: SLA_RECORDS_BREACHED.inc(count))
    return count


def _claim_warnings(*, now: datetime, limit: int, context: EventContext) -> int:
    """One batch: lock running records whose next warning is due (skipping ones another scan holds), write
    one ``SLAWarning`` per percentage reached, and move ``next_warning_at`` on."""
    records = list(
        SLARecord.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("task", "config")
        .filter(status=Status.RUNNING, next_warning_at__lte=now)
        .order_by("next_warning_at")[:limit]
    )
    written = 0
    for record in records:
        calendar = record.calendar
        reached = [
            p
            for p in record.warning_percentages
            if p not in record.warnings_sent and sla_record_warning_instant(record, p, calendar) <= now
        ]
        first_sequence, sent_before = record.version + 1, list(record.warnings_sent)
        record.warnings_sent = sorted([*sent_before, *reached])
        record.version += len(reached)
        sla_record_schedule(record)
        # The row is locked, but keep the compare-and-swap (on the stream position and the warnings already
        # sent) so a warning can never be recorded twice.
        updated = SLARecord.objects.filter(
            pk=record.pk, status=Status.RUNNING, version=first_sequence - 1, warnings_sent=sent_before
        ).update(
            warnings_sent=record.warnings_sent,
            version=record.version,
            next_warning_at=record.next_warning_at,
        )
        if updated != 1:
            continue
        for offset, percentage in enumerate(reached):
            event_append(
                event_type=SLAEventType.SLA_WARNING,
                aggregate_type=SLARecord.aggregate_type,
                aggregate_id=record.pk,
                sequence=first_sequence + offset,
                context=context,
                payload=sla_warning_payload(
                    record=record,
                    task=record.task,
                    config_name=record.config.name,
                    percentage=percentage,
                    warning_at=sla_record_warning_instant(record, percentage, calendar),
                ),
            )
            written += 1
    return written


def sla_scan(*, now: datetime | None = None, batch_size: int | None = None) -> ScanResult:
    """Breach running records past due and warn those past a warning percentage, exactly once each."""
    now = now or timezone.now()
    limit: int = batch_size or settings.SLA_SCAN_BATCH_SIZE
    context = EventContext.build(actor=None)
    result = ScanResult()
    while True:
        with transaction.atomic():
            claimed = _claim_breaches(now=now, limit=limit, context=context)
        result.breached += claimed
        if claimed < limit:
            break
    warnings_due = SLARecord.objects.filter(status=Status.RUNNING, next_warning_at__lte=now)
    while warnings_due.exists():  # a plain read first: no transaction or locks when nothing is due
        with transaction.atomic():
            warned = _claim_warnings(now=now, limit=limit, context=context)
        result.warned += warned
        if warned == 0:
            break
    if result.breached or result.warned:
        logger.info("sla scan: %s breached, %s warnings", result.breached, result.warned)
    return result
