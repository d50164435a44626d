"""The breach/warning scan: breach running records past due and warn those past a warning percentage.

Each batch is its own transaction. Breaches: one statement claims the batch (due running records locked
``FOR UPDATE SKIP LOCKED`` by ``polaris.leases.claim_due``, with their task; a second reads the configs'
names), Python applies ``sla.clock.sla_record_mark_breached`` and builds each
``sla.events.sla_breach_payload``, and one more statement writes every record's new columns (a
compare-and-swap on status and version) and all the events, from one JSON document
(``outbox.append.aggregates_advance``). Warnings lock due records with ``SKIP LOCKED`` too. So concurrent
scans split the work and never repeat it, and both claims read partial indexes on running records: the cost
follows what is due, not the table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outbox.append import Advance, aggregates_advance, event_append
from outbox.events import EventContext
from polaris.leases import claim_due
from sla.metrics import SLA_RECORDS_BREACHED

from .clock import sla_record_mark_breached, sla_record_schedule, sla_record_warning_instant
from .events import SLAEventType, sla_breach_payload, sla_warning_payload
from .models import SLAConfig, SLARecord, SLARecordStatus

logger = logging.getLogger(__name__)

Status = SLARecordStatus


@dataclass
class ScanResult:
    breached: int = 0
    warned: int = 0


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


def _claim_breaches(*, now: datetime, limit: int, context: EventContext) -> int:
    """One batch, in the caller's transaction: claim due running records (``SKIP LOCKED``: each is claimed by
    one scan), breach them and write their events, in three statements whatever the batch size."""
    records = claim_due(
        SLARecord.objects.select_related("task")
        .defer(*_NOT_READ_BY_A_BREACH)
        .filter(status=Status.RUNNING, due_at__lte=now),
        order_by="due_at",
        limit=limit,
    )
    if not records:
        return 0
    config_names = dict(
        SLAConfig.objects.filter(pk__in={record.config_id for record in records}).values_list("pk", "name")
    )
    batch: list[Advance] = []
    changed: tuple[str, ...] = ()
    for record in records:
        claimed_version = record.version
        changes = sla_record_mark_breached(record)
        changed = changed or tuple(changes)
        payload = sla_breach_payload(
            record=record, task=record.task, config_name=config_names[record.config_id], detected_by="scan"
        )
        batch.append(Advance(record.pk, claimed_version, record.version, payload, tuple(changes.values())))
    # One statement for the batch: each record's new columns (a compare-and-swap on status and version;
    # the rows are locked already, but an event is only written for a row it changed) and all the events.
    count = aggregates_advance(
        SLARecord,
        batch=batch,
        changed=changed,
        where={"status": Status.RUNNING},
        event_type=SLAEventType.SLA_BREACHED,
        aggregate_type=SLARecord.aggregate_type,
        context=context,
        now=now,
    )
    if count:
        transaction.on_commit(lambda: SLA_RECORDS_BREACHED.inc(count))
    return count


def _claim_warnings(*, now: datetime, limit: int, context: EventContext) -> int:
    """One batch: lock running records whose next warning is due (skipping ones another scan holds), write
    one ``SLAWarning`` per percentage reached, and move ``next_warning_at`` on."""
    records = claim_due(
        SLARecord.objects.select_related("task", "config").filter(
            status=Status.RUNNING, next_warning_at__lte=now
        ),
        order_by="next_warning_at",
        limit=limit,
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
