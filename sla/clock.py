"""The SLA record's clock: start on creation, pause/resume/stop on transitions, remaining time.

The record functions run inside the task transition's transaction (called from ``sla.receivers``), so a
task's state and its SLA bookkeeping always commit together. The calendar arithmetic itself is pure and
lives in ``sla.calendar``; this module applies it to a record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from outbox.append import aggregate_advance, event_append
from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.sql.precompiled import row_get
from sla.metrics import SLA_RECORDS_BREACHED
from sla.models import SLAConfig
from workflow.models import Task, TaskState

from .calendar import Calendar, add_working_seconds, working_seconds_between
from .configs import sla_config_match
from .events import SLAEventType, sla_breach_payload, sla_met_payload
from .models import SLARecord, SLARecordStatus

Status = SLARecordStatus
# What a completion on time writes (``sla_record_stop``): the stop, and what resuming from a pause moved.
_MET_COLUMNS = ("status", "stopped_at", "next_warning_at", "paused_at", "paused_seconds", "due_at", "version")


# --- Scheduling: where the clock's instants fall ---------------------------------------------------------


def sla_record_warning_instant(record: SLARecord, percentage: int, calendar: Calendar | None) -> datetime:
    """The instant ``percentage`` of the target (plus the time paused so far) has elapsed."""
    seconds = record.target_minutes * 60 * percentage / 100 + record.paused_seconds
    return add_working_seconds(record.started_at, seconds, calendar)


def sla_record_schedule(record: SLARecord) -> None:
    """Recompute ``due_at`` and ``next_warning_at`` from the snapshot and the paused time so far."""
    calendar = record.calendar
    record.due_at = add_working_seconds(
        record.started_at, record.target_minutes * 60 + record.paused_seconds, calendar
    )
    pending = [p for p in record.warning_percentages if p not in record.warnings_sent]
    record.next_warning_at = sla_record_warning_instant(record, min(pending), calendar) if pending else None


def sla_record_remaining_seconds(record: SLARecord, *, now: datetime | None = None) -> int | None:
    """Working seconds left on the clock (negative when overdue); ``None`` once the record is closed."""
    if record.status == SLARecordStatus.PAUSED and record.paused_at is not None:
        return round(working_seconds_between(record.paused_at, record.due_at, record.calendar))
    if record.status == SLARecordStatus.RUNNING:
        return round(working_seconds_between(now or timezone.now(), record.due_at, record.calendar))
    return None


# --- The lifecycle -------------------------------------------------------------------------------------


def sla_record_start(*, task: Task, now: datetime | None = None) -> SLARecord | None:
    """Start the task's SLA clock with the most specific matching active config (none: no record).

    Called from the task's ``post_save(created=True)`` inside ``task_create``'s transaction.
    """
    config = sla_config_match(task_type=task.task_type, service_area=task.service_area)
    if config is None:
        return None
    record = _record_started(task, config, now or timezone.now())
    record.save()
    return record


def sla_records_start(
    *, tasks: list[Task], configs: dict[tuple[str, str], SLAConfig | None], now: datetime
) -> list[SLARecord]:
    """``sla_record_start`` for tasks created together, in one INSERT: ``configs`` maps each task's
    ``(task_type, service_area)`` to its config (``sla.configs.sla_configs_match``, read once)."""
    records = []
    for task in tasks:
        config = configs[(task.task_type, task.service_area)]
        if config is not None:
            records.append(_record_started(task, config, now))
    return SLARecord.objects.bulk_create(records)


def _record_started(task: Task, config: SLAConfig, now: datetime) -> SLARecord:
    """A new (unsaved) record of ``task`` on ``config``, its clock started at ``now``."""
    record = SLARecord(
        task=task,
        config=config,
        target_minutes=config.target_minutes,
        calendar_snapshot=config.calendar.definition() if config.calendar is not None else None,
        warning_percentages=sorted(config.warning_percentages),
        pause_states=list(config.pause_states),
        started_at=now,
    )
    sla_record_schedule(record)
    if task.state in record.pause_states:
        record.status, record.paused_at = Status.PAUSED, now
    return record


def sla_record_mark_breached(record: SLARecord) -> dict[str, Any]:
    """What a breach does to a record, at a transition (``_breach``) and in the scan (``sla.scan``, which
    writes a whole batch at once): breached at its due time (when the SLA was actually missed, whatever the
    detection lag), no warning left, and the next position in its event stream (the event's ``sequence``).

    Sets the fields on ``record`` and returns them (field name → new value) for the caller to write.
    """
    changes: dict[str, Any] = {
        "status": Status.BREACHED,
        "breached_at": record.due_at,
        "next_warning_at": None,
        "version": record.version + 1,
    }
    for name, value in changes.items():
        setattr(record, name, value)
    return changes


def _breach(
    *, record: SLARecord, task: Task, now: datetime, context: EventContext, stopped: bool
) -> OutboxEvent:
    """Mark one locked record breached (at its due time) and write its ``SLABreached`` event."""
    sla_record_mark_breached(record)
    if stopped:
        record.stopped_at = now
    record.save()
    transaction.on_commit(SLA_RECORDS_BREACHED.inc)
    return event_append(
        event_type=SLAEventType.SLA_BREACHED,
        aggregate_type=SLARecord.aggregate_type,
        aggregate_id=record.pk,
        sequence=record.version,
        context=context,
        payload=sla_breach_payload(
            record=record,
            task=task,
            config_name=record.config.name,
            detected_by="completion" if stopped else "pause",
        ),
    )


def sla_record_pause(*, record: SLARecord, task: Task, now: datetime, context: EventContext) -> None:
    """Stop the clock (the task entered a pause state). A record already past due is breached instead."""
    if record.status != Status.RUNNING:
        return
    if record.due_at <= now:
        _breach(record=record, task=task, now=now, context=context, stopped=False)
        return
    record.status, record.paused_at = Status.PAUSED, now
    record.save(update_fields=["status", "paused_at"])


def _accumulate_pause(record: SLARecord, now: datetime) -> None:
    assert record.paused_at is not None
    paused = working_seconds_between(record.paused_at, now, record.calendar)
    record.paused_seconds += max(round(paused), 0)
    record.paused_at = None
    sla_record_schedule(record)


def sla_record_resume(*, record: SLARecord, now: datetime) -> None:
    """Restart the clock; ``due_at`` (and the next warning) move back by the working time spent paused."""
    if record.status != Status.PAUSED:
        return
    _accumulate_pause(record, now)
    record.status = Status.RUNNING
    record.save(update_fields=["status", "paused_at", "paused_seconds", "due_at", "next_warning_at"])


def sla_record_stop(
    *, record: SLARecord, task: Task, completed: bool, now: datetime, context: EventContext
) -> None:
    """The task reached a final state: completed → met with its ``SLAMet`` event (or breached when late,
    ``SLABreached``); cancelled → cancelled (no event).

    A record the scan already breached keeps that status and only gets its ``stopped_at``.
    """
    if record.stopped_at is not None or record.status in (Status.MET, Status.CANCELLED):
        return
    if record.status == Status.BREACHED:
        record.stopped_at = now
        record.save(update_fields=["stopped_at"])
        return
    if record.status == Status.PAUSED:
        _accumulate_pause(record, now)
    if completed and now > record.due_at:
        _breach(record=record, task=task, now=now, context=context, stopped=True)
        return
    record.status = Status.MET if completed else Status.CANCELLED
    record.stopped_at = now
    record.next_warning_at = None
    if not completed:
        record.save()
        return
    # Met: the record's columns and its ``SLAMet`` event in one compare-and-swap statement (the row is
    # locked already: the swap always succeeds).
    record.version += 1
    aggregate_advance(
        record,
        event_type=SLAEventType.SLA_MET,
        aggregate_type=SLARecord.aggregate_type,
        columns=_MET_COLUMNS,
        context=context,
        payload=sla_met_payload(record=record, task=task, config_name=record.config.name),
    )


def sla_record_locked(
    task: Task, *, locked_rows: dict[type[models.Model], models.Model | None]
) -> SLARecord | None:
    """The task's SLA record, row-locked until the transaction ends, cached on the task (whoever renders
    the task next, the API, needs no query; ``None`` is cached too).

    Locked only the record, not its config (every task sharing the config would queue behind it); the
    config is read lazily. A task write locks it in its own compare-and-swap statement
    (``workflow.extensions.task_locked_rows``, registered in ``SlaConfig``) and passes it here as
    ``locked_rows``; when it did not, it is read ``FOR UPDATE`` now.
    """
    record: SLARecord | None
    if SLARecord in locked_rows:
        record = locked_rows[SLARecord]  # type: ignore[assignment]  # the row of the model it is keyed by
    else:
        record = row_get(SLARecord, where={"task_id": task.pk}, lock=True)
    if record is None:
        Task.sla_record.related.set_cached_value(task, None)
    else:
        task.sla_record = record
    return record


def sla_record_track_transition(
    *, task: Task, record: SLARecord | None, target: str, context: EventContext
) -> None:
    """Apply a task transition to its (locked) SLA record."""
    if record is None:
        return
    now = timezone.now()
    if target == TaskState.COMPLETED:
        sla_record_stop(record=record, task=task, completed=True, now=now, context=context)
    elif target == TaskState.CANCELLED:
        sla_record_stop(record=record, task=task, completed=False, now=now, context=context)
    elif target in record.pause_states:
        sla_record_pause(record=record, task=task, now=now, context=context)
    else:
        sla_record_resume(record=record, now=now)


def sla_record_task_changed(
    *,
    task: Task,
    target: str | None,
    changes: dict[str, Any],
    context: EventContext,
    locked_rows: dict[type[models.Model], models.Model | None],
) -> None:
    """A task's transition (``target``) or edit (``changes``) was written: bring its SLA record along
    (the ``workflow.signals.task_changed`` receiver's one call)."""
    record = sla_record_locked(task, locked_rows=locked_rows)
    if target is not None:
        sla_record_track_transition(task=task, record=record, target=target, context=context)
    elif "service_area" in changes or "task_type" in changes:
        sla_record_rematch(task=task, record=record)


def sla_record_rematch(
    *, task: Task, record: SLARecord | None, now: datetime | None = None
) -> SLARecord | None:
    """The task's ``service_area``/``task_type`` changed (only possible while it is ``new``): re-match.

    - The same config still matches: nothing changes.
    - A record that is running or paused takes a fresh snapshot of the newly matching config (target,
      calendar, warning percentages, pause states), keeping ``started_at`` (the clock counts from the
      task's creation either way) and the time paused so far; ``due_at`` and the next warning are
      recomputed and ``warnings_sent`` starts empty (the scan warns for the new thresholds).
    - No config matches any more: the record is deleted (the task has no SLA, as if created so).
    - No record yet and a config matches now: one starts, with ``started_at`` = the task's creation.
    - A record already breached (or otherwise closed) keeps its history: it is left as it is.

    Called with the task's locked record from ``workflow.signals.task_changed`` inside the edit's
    transaction.
    """
    config = sla_config_match(task_type=task.task_type, service_area=task.service_area)
    if record is None:
        if config is None:
            return None
        record = sla_record_start(task=task, now=task.created_at)
        task._state.fields_cache.pop("sla_record", None)  # the None cached above: read it anew if asked
        return record
    if record.status not in (Status.RUNNING, Status.PAUSED) or record.config_id == getattr(
        config, "pk", None
    ):
        return record
    if config is None:
        record.delete()
        task._state.fields_cache.pop("sla_record", None)
        return None
    record.config = config
    record.target_minutes = config.target_minutes
    record.calendar_snapshot = config.calendar.definition() if config.calendar is not None else None
    record.warning_percentages = sorted(config.warning_percentages)
    record.pause_states = list(config.pause_states)
    record.warnings_sent = []
    sla_record_schedule(record)
    record.save()
    task.sla_record = record
    return record
