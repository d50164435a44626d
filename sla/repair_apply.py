"""Applying an SLA repair: the change made and audited, then every changed record re-measured, in batches.

``sla_repair_create`` (one transaction) makes the proposed change (the config or calendar updated through
its audited service), records the repair (``pending``, with ``as_of`` — the instant breaches are judged
at) and enqueues ``sla.sla_repair_apply`` after commit. ``sla_repair_run`` then applies it batch by batch,
each batch its own transaction: the repair row locked (so two runs of one repair take turns), the next
records after its ``cursor`` locked ``FOR UPDATE`` in id order (a scan or a transition holding one is
waited for; the scan skips those the batch holds), measured with ``sla.repair.RepairMeasure`` exactly as
the preview did, and for each changed record:

- the measurement it replaces is kept as a ``SLARecordVersion`` (number 1, "what we promised then", is
  written the first time; later ones already exist) and the new one added beside it;
- the record's clock columns take the new measurement (``measurement`` + 1), and one ``SLARecalculated``
  event is written at the next position of its stream — all records and events of the batch in one
  compare-and-swap statement (``outbox.append.aggregates_advance``);
- a record the new measurement breaches that was not breached gets its one ``SLABreached``
  (``detected_by: "repair"``) right after; a record no longer breached goes back to running (or paused),
  and the scan breaches it again if its new due time passes.

The batch's counts and its cursor commit with it, so a retry (Celery's, or a second run) resumes where the
last committed batch ended and never measures a record twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import current_app
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from outbox.append import Advance, NewEvent, aggregates_advance, events_append
from outbox.events import EventContext
from polaris.access import require_admin
from polaris.accounts.models import User
from polaris.audit.services import audit_record
from polaris.errors import ConcurrentModification, ValidationFailed
from workflow.models import TaskState

from .configs import business_calendar_snapshot, sla_config_update
from .events import SLAEventType, sla_breach_payload, sla_recalculated_payload
from .models import BusinessCalendar, SLARecord, SLARecordStatus, SLARecordVersion, SLARepair, SLARepairState
from .repair import (
    Measurement,
    Proposal,
    RepairKind,
    RepairMeasure,
    RepairScope,
    proposal_check,
    repair_records,
    repair_scope_check,
)

logger = logging.getLogger(__name__)
Status = SLARecordStatus
State = SLARepairState

BATCH_SIZE = 1000
CHANGED_COLUMNS = (
    "target_minutes",
    "calendar_snapshot",
    "due_at",
    "next_warning_at",
    "status",
    "breached_at",
    "paused_at",
    "measurement",
    "version",
)


def repair_summary(repair: SLARepair) -> dict[str, Any]:
    return {
        "change": repair.change,
        "scope": repair.scope,
        "as_of": repair.as_of.isoformat(),
        "total": repair.total,
    }


def _calendar_change(*, actor: User | None, proposal: Proposal) -> None:
    assert proposal.calendar is not None
    calendar = BusinessCalendar.objects.select_for_update().get(pk=proposal.calendar)
    before = business_calendar_snapshot(calendar)
    if proposal.hours is not None:
        calendar.working_hours = proposal.hours
    if proposal.holidays is not None:
        calendar.holidays = sorted(set(proposal.holidays))
    try:
        calendar.full_clean()
    except ValidationError as exc:
        raise ValidationFailed(details={"calendar": [str(m) for m in exc.messages]}) from None
    calendar.save()
    audit_record(
        actor=actor,
        action="business_calendar.updated",
        obj=calendar,
        before=before,
        after=business_calendar_snapshot(calendar),
    )


def _change_make(*, actor: User | None, proposal: Proposal) -> None:
    """Make the proposed change itself, through the audited services."""
    if proposal.kind == RepairKind.CONFIG_TARGET:
        sla_config_update(actor=actor, config_id=proposal.config, target_minutes=proposal.target_minutes)
    elif proposal.kind == RepairKind.CONFIG_CALENDAR:
        calendar = None if proposal.calendar is None else BusinessCalendar.objects.get(pk=proposal.calendar)
        sla_config_update(actor=actor, config_id=proposal.config, calendar=calendar)
    elif proposal.kind in (RepairKind.CALENDAR_HOURS, RepairKind.CALENDAR_HOLIDAYS):
        _calendar_change(actor=actor, proposal=proposal)


@transaction.atomic
def sla_repair_create(
    *, actor: User | None, proposal: Proposal, scope: RepairScope, now: datetime | None = None
) -> SLARepair:
    """Make the proposed change and start applying it (``pending``; ``sla.sla_repair_apply`` runs it)."""
    require_admin(actor, "Only admins repair SLA records.")
    proposal_check(proposal)
    repair_scope_check(scope)
    repair = SLARepair.objects.create(
        change=proposal.as_json(),
        scope=scope.as_json(),
        as_of=now or timezone.now(),
        requested_by=actor,
        total=repair_records(proposal, scope).count(),
    )
    _change_make(actor=actor, proposal=proposal)
    audit_record(actor=actor, action="sla_repair.created", obj=repair, after=repair_summary(repair))
    # By name, as beat does: the Celery interface (``sla.tasks``) imports the services, not the reverse.
    transaction.on_commit(lambda: current_app.send_task("sla.sla_repair_apply", args=[str(repair.pk)]))
    return repair


def _version(record: SLARecord, *, repair: SLARepair | None, at: datetime) -> SLARecordVersion:
    return SLARecordVersion(
        record=record,
        number=record.measurement,
        repair=repair,
        target_minutes=record.target_minutes,
        calendar_snapshot=record.calendar_snapshot,
        due_at=record.due_at,
        status=record.status,
        breached_at=record.breached_at,
        recorded_at=at,
    )


def _remeasure(record: SLARecord, m: Measurement, measure: RepairMeasure) -> bool:
    """Give ``record`` the new measurement; True when that newly breaches it (its ``SLABreached`` is due).

    A cancelled task's outcome is not re-judged (only its due time moves)."""
    was_breached = record.status == Status.BREACHED
    if m.new_calendar != record.calendar:
        record.calendar_snapshot = None if m.new_calendar is None else measure.definitions[m.new_calendar]
    record.target_minutes = m.new_target
    record.due_at = m.new_due
    record.measurement += 1
    record.version += 1
    if record.stopped_at is None or record.task.state != TaskState.CANCELLED:
        if m.new_breached:
            record.status, record.breached_at, record.paused_at = Status.BREACHED, m.new_due, None
        elif was_breached:
            record.breached_at = None
            if record.stopped_at is not None:
                record.status = Status.MET
            elif record.task.state in record.pause_states:  # the clock stops from the repair on
                record.status, record.paused_at = Status.PAUSED, measure.as_of
            else:
                record.status = Status.RUNNING
    elif record.status == Status.BREACHED:
        record.breached_at = m.new_due
    record.next_warning_at = None
    pending = [p for p in record.warning_percentages if p not in record.warnings_sent]
    if record.status in (Status.RUNNING, Status.PAUSED) and pending:
        # What ``sla.clock.sla_record_warning_instant`` computes, by lookup.
        seconds = record.target_minutes * 60 * min(pending) / 100 + record.paused_seconds
        record.next_warning_at = measure.worktime.add_seconds(record.started_at, seconds, m.new_calendar)
    return record.status == Status.BREACHED and not was_breached


def _apply_batch(repair: SLARepair, records: list[SLARecord], measure: RepairMeasure) -> dict[str, int]:
    now = timezone.now()
    counts = {"changed": 0, "unchanged": 0, "newly_breached": 0, "no_longer_breached": 0}
    versions, batch, breaches = [], [], []
    context = EventContext.build(actor=None, correlation_id=f"sla-repair-{repair.pk}")
    old_versions = []
    for record in records:
        m = measure.measure_record(record)
        if not m.changed:
            counts["unchanged"] += 1
            continue
        counts["changed"] += 1
        counts["newly_breached"] += m.new_breached and not m.old_breached
        counts["no_longer_breached"] += m.old_breached and not m.new_breached
        if record.measurement == 1:
            old_versions.append(_version(record, repair=None, at=record.started_at))
        claimed = record.version
        breach = _remeasure(record, m, measure)
        versions.append(_version(record, repair=repair, at=now))
        payload = sla_recalculated_payload(
            record=record,
            task=record.task,
            config_name=record.config.name,
            repair_id=repair.pk,
            previous_due_at=m.old_due,
            previous_target_minutes=m.old_target,
            breached_before=m.old_breached,
            breached=m.new_breached,
        )
        if breach:
            record.version += 1
            breaches.append(record)
        values = tuple(getattr(record, column) for column in CHANGED_COLUMNS)
        batch.append(Advance(record.pk, claimed, claimed + 1, payload, values))
    SLARecordVersion.objects.bulk_create(old_versions, ignore_conflicts=True)
    advanced = aggregates_advance(
        SLARecord,
        batch=batch,
        changed=CHANGED_COLUMNS,
        where={},
        event_type=SLAEventType.SLA_RECALCULATED,
        aggregate_type=SLARecord.aggregate_type,
        context=context,
        now=now,
    )
    if advanced != len(batch):  # the rows are locked: only a bug gets here; roll the batch back
        raise ConcurrentModification("SLA records changed under a repair batch.")
    SLARecordVersion.objects.bulk_create(versions)
    events_append(
        [
            NewEvent(
                SLAEventType.SLA_BREACHED,
                SLARecord.aggregate_type,
                record.pk,
                record.version,
                context,
                sla_breach_payload(
                    record=record, task=record.task, config_name=record.config.name, detected_by="repair"
                ),
            )
            for record in breaches
        ]
    )
    return counts


def sla_repair_run(*, repair_id: Any, batch_size: int = BATCH_SIZE) -> SLARepair:
    """Apply a repair batch by batch until done (resuming after its cursor: retries repeat nothing)."""
    repair = SLARepair.objects.get(pk=repair_id)
    proposal, scope = Proposal.from_json(repair.change), RepairScope.from_json(repair.scope)
    origin = (
        repair_records(proposal, scope).order_by("started_at").values_list("started_at", flat=True).first()
    )
    measure = RepairMeasure(proposal, as_of=repair.as_of, origin=origin or repair.as_of)
    while True:
        with transaction.atomic():
            repair = SLARepair.objects.select_for_update().get(pk=repair_id)
            if repair.state == State.DONE:
                return repair
            if repair.state != State.RUNNING:
                repair.state, repair.started_at, repair.error = (
                    State.RUNNING,
                    repair.started_at or timezone.now(),
                    "",
                )
            records = repair_records(proposal, scope).select_related("task", "config").order_by("id")
            if repair.cursor is not None:
                records = records.filter(id__gt=repair.cursor)
            batch = list(records.select_for_update(of=("self",))[:batch_size])
            if batch:
                counts = _apply_batch(repair, batch, measure)
                for name, value in counts.items():
                    setattr(repair, name, getattr(repair, name) + value)
                repair.processed += len(batch)
                repair.cursor = batch[-1].pk
            else:
                repair.state, repair.finished_at = State.DONE, timezone.now()
                audit_record(actor=None, action="sla_repair.applied", obj=repair, after=repair_counts(repair))
            repair.save()
        if not batch:
            logger.info("sla repair %s done: %s", repair.pk, repair_counts(repair))
            return repair


def repair_counts(repair: SLARepair) -> dict[str, int]:
    names = ("total", "processed", "changed", "unchanged", "newly_breached", "no_longer_breached")
    return {name: getattr(repair, name) for name in names}


def sla_repair_fail(*, repair_id: Any, error: str) -> None:
    """Mark a repair failed (its retries ran out); running it again resumes after its cursor."""
    SLARepair.objects.filter(pk=repair_id).exclude(state=State.DONE).update(
        state=State.FAILED, error=error[:2000], finished_at=timezone.now()
    )
