"""The breach/warning scan: breach running records past due and warn those past a warning percentage.

Each batch is its own transaction. Breaches: one statement claims the batch (due running records locked
``FOR UPDATE SKIP LOCKED``, with their task; a second reads the configs' names), Python applies
``sla.clock.sla_record_mark_breached`` and builds each ``sla.events.sla_breach_payload``, and one more
statement writes every record's new columns (a compare-and-swap on status and version) and all the events,
from one JSON document. Warnings lock due records with ``SKIP LOCKED`` too. So concurrent scans split the
work and never repeat it, and both claims read partial indexes on running records: the cost follows what
is due, not the table.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import NOT_PROVIDED
from django.utils import timezone

from outbox.events import EventContext
from outbox.kick import kick_after_commit
from outbox.models import OutboxEvent
from sla.metrics import SLA_RECORDS_BREACHED
from workflow.services.events import event_append

from .clock import sla_record_mark_breached, sla_record_schedule, sla_record_warning_instant
from .events import SLAEventType, sla_breach_payload, sla_warning_payload
from .models import SLAConfig, SLARecord, SLARecordStatus

logger = logging.getLogger(__name__)

Status = SLARecordStatus


@dataclass
class ScanResult:
    breached: int = 0
    warned: int = 0


# The write, one statement per batch. The batch arrives as one JSON document, a row per claimed record: its
# id, the version it was claimed at, its event's sequence and payload (``sla_breach_payload``), and the new
# values of the columns a breach changes (``sla_record_mark_breached``). One text parameter, not an array
# per column: psycopg escapes array elements one by one in Python, which cost more than the whole scan.
# The UPDATE keeps a compare-and-swap on status and version (the rows are locked already; an event is only
# written for a row it changed), the INSERT fills every outbox column.
_WRITE_SQL = """
WITH batch AS (
    SELECT * FROM jsonb_to_recordset(%(batch)s::jsonb) AS b({batch_columns})
),
updated AS (
    UPDATE {record} AS r
       SET {assignments}
      FROM batch b
     WHERE r.{id} = b.id AND r.{status} = %(running)s AND r.{version} = b.claimed_version
 RETURNING r.{id} AS id
),
written AS (
    INSERT INTO {outbox} ({columns})
    SELECT {values}
      FROM batch b
      JOIN updated u ON u.id = b.id
    RETURNING 1
)
SELECT count(*) FROM written
"""


def _column(name: str) -> tuple[str, str]:
    """An ``SLARecord`` field's quoted column and its type (``uuid``, ``timestamp with time zone``, …)."""
    field = SLARecord._meta.get_field(name)
    assert isinstance(field, models.Field)
    assert field.column
    return connection.ops.quote_name(field.column), str(field.db_type(connection))


@functools.cache
def _write_sql(changed: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """The statement for records whose breach changes the fields ``changed``, with a value for every outbox
    column: ours, and any other column's model default (so a column added to ``OutboxEvent`` later does not
    break the scan)."""
    id_column, id_type = _column("id")
    status_column, _ = _column("status")
    version_column, version_type = _column("version")
    batch_columns = [f"id {id_type}", f"claimed_version {version_type}", f"sequence {version_type}"]
    batch_columns.append("payload jsonb")
    assignments = []
    for position, name in enumerate(changed):
        column, column_type = _column(name)
        batch_columns.append(f"c{position} {column_type}")
        assignments.append(f"{column} = b.c{position}")
    ours = {
        "id": "gen_random_uuid()",
        "event_type": "%(event_type)s",
        "aggregate_type": "%(aggregate_type)s",
        "aggregate_id": "b.id",
        "sequence": "b.sequence",
        "occurred_at": "%(now)s",
        "next_attempt_at": "%(now)s",
        "actor_id": "NULL",
        "correlation_id": "%(correlation_id)s",
        "causation_id": "%(causation_id)s",
        "depth": "%(depth)s",
        "payload": "b.payload",
    }
    columns, values, params = [], [], {}
    for field in OutboxEvent._meta.concrete_fields:
        if field.db_default is not NOT_PROVIDED:
            continue  # the database fills it (the writing transaction's id)
        columns.append(connection.ops.quote_name(field.column or field.attname))
        if field.attname in ours:
            values.append(ours[field.attname])
        else:
            key = f"default_{field.attname}"
            params[key] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%({key})s")
    sql = _WRITE_SQL.format(
        batch_columns=", ".join(batch_columns),
        record=connection.ops.quote_name(SLARecord._meta.db_table),
        id=id_column,
        status=status_column,
        version=version_column,
        assignments=", ".join(assignments),
        outbox=connection.ops.quote_name(OutboxEvent._meta.db_table),
        columns=", ".join(columns),
        values=", ".join(values),
    )
    return sql, params


# Columns the breach (``sla_record_mark_breached``, ``sla_breach_payload``) does not read, left out of the
# claim: decoding them was most of its cost. Reading one would cost a query per record (``test_scan`` counts).
_NOT_READ_BY_A_BREACH = (
    "calendar_snapshot",
    "warning_percentages",
    "pause_states",
    "warnings_sent",
    "task__description",
    "task__blocked_reason",
    "task__due_at",
    "task__created_at",
    "task__updated_at",
)


def _json_value(value: Any) -> Any:
    """A value in the batch document: timestamps in full ISO form (microseconds kept), UUIDs as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} in the breach batch")


def _claim_breaches(*, now: datetime, limit: int, context: EventContext) -> int:
    """One batch, in the caller's transaction: claim due running records (``SKIP LOCKED``: each is claimed by
    one scan), breach them and write their events, in three statements whatever the batch size."""
    records = list(
        SLARecord.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("task")
        .defer(*_NOT_READ_BY_A_BREACH)
        .filter(status=Status.RUNNING, due_at__lte=now)
        .order_by("due_at")[:limit]
    )
    if not records:
        return 0
    config_names = dict(
        SLAConfig.objects.filter(pk__in={record.config_id for record in records}).values_list("pk", "name")
    )
    batch: list[dict[str, Any]] = []
    changed: tuple[str, ...] = ()
    for record in records:
        row = {"id": record.pk, "claimed_version": record.version}
        changes = sla_record_mark_breached(record)
        changed = changed or tuple(changes)
        for position, value in enumerate(changes.values()):
            row[f"c{position}"] = value
        row["sequence"] = record.version
        row["payload"] = sla_breach_payload(
            record=record, task=record.task, config_name=config_names[record.config_id], detected_by="scan"
        )
        batch.append(row)
    sql, defaults = _write_sql(changed)
    params: dict[str, Any] = dict(defaults)
    params.update(
        batch=json.dumps(batch, default=_json_value),
        running=Status.RUNNING,
        now=now,
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
