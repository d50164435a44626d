"""The breach/warning scan: breach running records past due and warn those past a warning percentage.

Each batch is its own transaction. Breaches: one statement claims the batch (due running records locked
``FOR UPDATE SKIP LOCKED``, with their task and config), Python applies ``sla.clock.sla_record_mark_breached``
and builds each ``sla.events.sla_breach_payload``, and one more statement writes every record's new columns
(a compare-and-swap on status and version) and all the events, from arrays. Warnings lock due records with
``SKIP LOCKED`` too. So concurrent scans split the work and never repeat it, and both claims read partial
indexes on running records: the cost follows what is due, not the table.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from outbox.events import EventContext
from outbox.kick import kick_after_commit
from outbox.models import OutboxEvent
from polaris.metrics import SLA_RECORDS_BREACHED
from workflow.services.events import event_append

from .clock import sla_record_mark_breached, sla_record_schedule, sla_record_warning_instant
from .events import SLAEventType, sla_breach_payload, sla_warning_payload
from .models import SLARecord, SLARecordStatus

logger = logging.getLogger(__name__)

Status = SLARecordStatus


@dataclass
class ScanResult:
    breached: int = 0
    warned: int = 0


# The write, one statement per batch: the claimed records' new columns (from ``sla_record_mark_breached``)
# and their events' payloads (from ``sla_breach_payload``) arrive as arrays, one element per record. The
# UPDATE keeps a compare-and-swap on status and version (the rows are locked already; an event is only
# written for a row it changed), the INSERT fills every outbox column.
_WRITE_SQL = """
WITH batch AS (
    SELECT * FROM unnest({arrays}) AS b(id, claimed_version, sequence, payload, {changed})
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


def _column(model: type[models.Model], name: str) -> tuple[str, str]:
    """A field's quoted column and its array type (``uuid[]``, ``timestamp with time zone[]``, …)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    assert field.column
    return connection.ops.quote_name(field.column), f"{field.db_type(connection)}[]"


@functools.cache
def _write_sql(changed: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """The statement for records whose breach changes the fields ``changed``, with a value for every outbox
    column: ours, and any other column's model default (so a column added to ``OutboxEvent`` later does not
    break the scan)."""
    id_column, id_type = _column(SLARecord, "id")
    status_column, _ = _column(SLARecord, "status")
    version_column, version_type = _column(SLARecord, "version")
    arrays = [f"%(ids)s::{id_type}", f"%(claimed_versions)s::{version_type}"]
    arrays += [f"%(sequences)s::{version_type}", "%(payloads)s::jsonb[]"]
    assignments, aliases = [], []
    for position, name in enumerate(changed):
        column, array_type = _column(SLARecord, name)
        arrays.append(f"%(changed_{position})s::{array_type}")
        aliases.append(f"c{position}")
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
        columns.append(connection.ops.quote_name(field.column or field.attname))
        if field.attname in ours:
            values.append(ours[field.attname])
        else:
            key = f"default_{field.attname}"
            params[key] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%({key})s")
    sql = _WRITE_SQL.format(
        arrays=", ".join(arrays),
        changed=", ".join(aliases),
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


def _claim_breaches(*, now: datetime, limit: int, context: EventContext) -> int:
    """One batch, in the caller's transaction: claim due running records (``SKIP LOCKED``: each is claimed by
    one scan), breach them and write their events, in two statements whatever the batch size."""
    records = list(
        SLARecord.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("task", "config")
        .filter(status=Status.RUNNING, due_at__lte=now)
        .order_by("due_at")[:limit]
    )
    if not records:
        return 0
    encode = functools.partial(json.dumps, cls=OutboxEvent._meta.get_field("payload").encoder)
    ids, claimed_versions, sequences, payloads = [], [], [], []
    changed_values: list[list[Any]] = []
    changed: tuple[str, ...] = ()
    for record in records:
        claimed_version = record.version
        changes = sla_record_mark_breached(record)
        if not changed_values:
            changed, changed_values = tuple(changes), [[] for _ in changes]
        for column, value in zip(changed_values, changes.values(), strict=True):
            column.append(value)
        ids.append(record.pk)
        claimed_versions.append(claimed_version)
        sequences.append(record.version)
        payload = sla_breach_payload(
            record=record, task=record.task, config_name=record.config.name, detected_by="scan"
        )
        payloads.append(encode(payload))
    sql, defaults = _write_sql(changed)
    params: dict[str, Any] = dict(defaults)
    params.update(
        ids=ids,
        claimed_versions=claimed_versions,
        sequences=sequences,
        payloads=payloads,
        running=Status.RUNNING,
        now=now,
        event_type=SLAEventType.SLA_BREACHED,
        aggregate_type=SLARecord.aggregate_type,
        correlation_id=context.correlation_id,
        causation_id=context.causation_id,
        depth=context.depth,
    )
    for position, (name, values) in enumerate(zip(changed, changed_values, strict=True)):
        prepare = SLARecord._meta.get_field(name).get_db_prep_save  # as ``save()`` would write them
        params[f"changed_{position}"] = [prepare(value, connection) for value in values]
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
