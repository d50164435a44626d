"""The breach/warning scan: breach running records past due and warn those past a warning percentage.

Each batch is its own transaction. Breaches are claimed with one compare-and-swap ``UPDATE … WHERE status =
'running'`` over ``FOR UPDATE SKIP LOCKED`` rows, whose events the same statement writes (payload:
``sla.events.SLA_BREACH_PAYLOAD_SQL``); warnings by locking due records with ``SKIP LOCKED``. So
concurrent scans split the work and never repeat it, and both claims read partial indexes on running
records: the cost follows what is due, not the table.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from outbox.events import EventContext
from outbox.kick import kick_after_commit
from outbox.models import OutboxEvent
from polaris.metrics import SLA_RECORDS_BREACHED
from workflow.models import Task
from workflow.services.events import event_append

from .clock import sla_record_schedule, sla_record_warning_instant
from .events import SLA_BREACH_PAYLOAD_SQL, SLAEventType, sla_warning_payload
from .models import SLAConfig, SLARecord, SLARecordStatus

logger = logging.getLogger(__name__)

Status = SLARecordStatus


@dataclass
class ScanResult:
    breached: int = 0
    warned: int = 0


# One statement per batch: claim (compare-and-swap on status), then write every claimed record's event,
# all in the database. Concurrent scans skip each other's locked rows and split the work; a row another
# scan has just breached no longer matches ``status = 'running'`` when re-checked.
_BREACH_SQL = """
WITH claimed AS (
    UPDATE {record} AS r
       SET status = 'breached', breached_at = r.due_at, next_warning_at = NULL, version = r.version + 1
     WHERE r.id IN (
               SELECT id FROM {record}
                WHERE status = 'running' AND due_at <= %(now)s
                ORDER BY due_at
                LIMIT %(limit)s
                  FOR UPDATE SKIP LOCKED)
       AND r.status = 'running' AND r.due_at <= %(now)s
 RETURNING r.id, r.task_id, r.config_id, r.version, r.target_minutes, r.started_at, r.due_at, r.paused_seconds
),
written AS (
    INSERT INTO {outbox} ({columns})
    SELECT {values}
      FROM claimed c
      JOIN {task} t ON t.id = c.task_id
      JOIN {config} cfg ON cfg.id = c.config_id
    RETURNING 1
)
SELECT count(*) FROM written
"""


@functools.cache
def _breach_sql() -> tuple[str, dict[str, Any]]:
    """The statement, with a value for every outbox column: ours, and any other column's model default (so a
    column added to ``OutboxEvent`` later does not break the scan)."""
    ours = {
        "id": "gen_random_uuid()",
        "event_type": "%(event_type)s",
        "aggregate_type": "%(aggregate_type)s",
        "aggregate_id": "c.id",
        "sequence": "c.version",
        "occurred_at": "%(now)s",
        "next_attempt_at": "%(now)s",
        "actor_id": "NULL",
        "correlation_id": "%(correlation_id)s",
        "causation_id": "%(causation_id)s",
        "depth": "%(depth)s",
        "payload": SLA_BREACH_PAYLOAD_SQL,
    }
    columns, values, params = [], [], {}
    for field in OutboxEvent._meta.concrete_fields:
        columns.append(connection.ops.quote_name(field.column or field.attname))
        if field.attname in ours:
            values.append(ours[field.attname])
        else:
            key = f"default_{field.attname}"
            params[key] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%({key})s")
    sql = _BREACH_SQL.format(
        record=SLARecord._meta.db_table,
        task=Task._meta.db_table,
        config=SLAConfig._meta.db_table,
        outbox=OutboxEvent._meta.db_table,
        columns=", ".join(columns),
        values=", ".join(values),
    )
    return sql, params


def _claim_breaches(*, now: datetime, limit: int, context: EventContext) -> int:
    """One batch, in the caller's transaction: CAS-claim due running records and write their events."""
    sql, defaults = _breach_sql()
    params = dict(defaults)
    params.update(
        now=now,
        limit=limit,
        event_type=SLAEventType.SLA_BREACHED,
        aggregate_type=SLARecord.aggregate_type,
        correlation_id=context.correlation_id,
        causation_id=context.causation_id,
        depth=context.depth,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (count,) = cursor.fetchone()
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
