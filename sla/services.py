"""SLA writes: configs, the per-task record's clock (start, pause, resume, stop) and the breach/warning scan.

The record functions run inside the task transition's transaction (called from ``sla.receivers``), so a
task's state and its SLA bookkeeping always commit together.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from outbox.events import EventContext
from outbox.kick import kick_after_commit
from outbox.models import OutboxEvent
from polaris.accounts.models import User
from polaris.errors import ValidationFailed
from polaris.metrics import SLA_RECORDS_BREACHED
from polaris.precompiled import row_get
from workflow.models import Task, TaskState
from workflow.services.events import event_append, task_facts

from .calendar import Calendar, add_working_seconds, working_seconds_between
from .events import SLAEventType
from .models import BusinessCalendar, SLAConfig, SLARecord, SLARecordStatus
from .selectors import sla_config_get, sla_config_match, sla_config_require_admin

logger = logging.getLogger(__name__)

Status = SLARecordStatus
CONFIG_FIELDS = (
    "name",
    "service_area",
    "task_type",
    "target_minutes",
    "warning_percentages",
    "pause_states",
    "calendar",
    "active",
)


# --- Configs -------------------------------------------------------------------------------------------


def _validation_details(exc: ValidationError) -> dict[str, list[str]]:
    if not hasattr(exc, "error_dict"):
        return {"non_field_errors": [str(message) for message in exc.messages]}
    return {
        ("non_field_errors" if field == "__all__" else field): [str(message) for message in messages]
        for field, messages in exc.message_dict.items()
    }


def _config_save(config: SLAConfig) -> SLAConfig:
    try:
        config.full_clean()
    except ValidationError as exc:
        raise ValidationFailed(details=_validation_details(exc)) from None
    try:
        # A savepoint: losing a race on the unique constraint leaves the caller's transaction usable.
        with transaction.atomic():
            config.save()
    except IntegrityError:
        raise ValidationFailed(
            details={
                "non_field_errors": [
                    "Another active SLA config has the same service area and task type (or the same name)."
                ]
            }
        ) from None
    return config


@transaction.atomic
def sla_config_create(
    *,
    actor: User | None,
    name: str,
    target_minutes: int,
    service_area: str = "",
    task_type: str = "",
    warning_percentages: list[int] | None = None,
    pause_states: list[str] | None = None,
    calendar: BusinessCalendar | None = None,
    active: bool = True,
) -> SLAConfig:
    """Create a config. Raises ``ValidationFailed`` for bad input or a tie with another active config."""
    sla_config_require_admin(actor)
    config = SLAConfig(
        name=name,
        service_area=service_area,
        task_type=task_type,
        target_minutes=target_minutes,
        warning_percentages=[75] if warning_percentages is None else warning_percentages,
        pause_states=[TaskState.BLOCKED.value] if pause_states is None else pause_states,
        calendar=calendar,
        active=active,
    )
    return _config_save(config)


@transaction.atomic
def sla_config_update(*, actor: User | None, config_id: Any, **changes: Any) -> SLAConfig:
    """Change a config's fields. Running records keep the snapshot they took at start; only tasks created
    from now on see the change."""
    sla_config_require_admin(actor)
    unknown = set(changes) - set(CONFIG_FIELDS)
    if unknown:
        raise ValidationFailed(details={field: ["Unknown field."] for field in sorted(unknown)})
    config = sla_config_get(user=actor, config_id=config_id, for_update=True)
    for field, value in changes.items():
        setattr(config, field, value)
    return _config_save(config)


@transaction.atomic
def business_calendar_holidays_fill(*, calendar: BusinessCalendar, years: list[int]) -> int:
    """Copy the public holidays of the calendar's country (``holidays`` package) for ``years`` into its
    explicit ``holidays`` list, so they show (and can be edited) in the admin. Returns how many were added.

    Records keep working without this: a calendar with a ``country_code`` also skips that country's holidays
    on the fly. Filling makes the dates explicit, and lets an admin remove one that the office works.
    """
    if not calendar.country_code:
        raise ValidationFailed(details={"country_code": ["Set a country code first."]})
    try:
        import holidays

        table = holidays.country_holidays(
            calendar.country_code.upper(), subdiv=calendar.subdivision or None, years=years
        )
    except NotImplementedError:
        raise ValidationFailed(details={"country_code": ["Unknown to the holidays package."]}) from None
    existing = set(calendar.holidays or [])
    added = sorted({day.isoformat() for day in table} - existing)
    calendar.holidays = sorted(existing | set(added))
    calendar.save(update_fields=["holidays", "updated_at"])
    return len(added)


# --- The record's clock --------------------------------------------------------------------------------


def _warning_instant(record: SLARecord, percentage: int, calendar: Calendar | None) -> datetime:
    seconds = record.target_minutes * 60 * percentage / 100 + record.paused_seconds
    return add_working_seconds(record.started_at, seconds, calendar)


def _schedule(record: SLARecord) -> None:
    """Recompute ``due_at`` and ``next_warning_at`` from the snapshot and the paused time so far."""
    calendar = record.calendar
    record.due_at = add_working_seconds(
        record.started_at, record.target_minutes * 60 + record.paused_seconds, calendar
    )
    pending = [p for p in record.warning_percentages if p not in record.warnings_sent]
    record.next_warning_at = _warning_instant(record, min(pending), calendar) if pending else None


def _event_payload(record: SLARecord, task: Task, config_name: str) -> dict[str, Any]:
    return {
        **task_facts(task),
        "task_state": task.state,
        "sla_record_id": str(record.pk),
        "config_name": config_name,
        "target_minutes": record.target_minutes,
        "started_at": record.started_at.isoformat(),
        "due_at": record.due_at.isoformat(),
        "paused_seconds": record.paused_seconds,
    }


def sla_record_start(*, task: Task, now: datetime | None = None) -> SLARecord | None:
    """Start the task's SLA clock with the most specific matching active config (none: no record).

    Called from the task's ``post_save(created=True)`` inside ``task_create``'s transaction.
    """
    config = sla_config_match(task_type=task.task_type, service_area=task.service_area)
    if config is None:
        return None
    now = now or timezone.now()
    record = SLARecord(
        task=task,
        config=config,
        target_minutes=config.target_minutes,
        calendar_snapshot=config.calendar.definition() if config.calendar is not None else None,
        warning_percentages=sorted(config.warning_percentages),
        pause_states=list(config.pause_states),
        started_at=now,
    )
    _schedule(record)
    if task.state in record.pause_states:
        record.status, record.paused_at = Status.PAUSED, now
    record.save()
    return record


def _breach(
    *, record: SLARecord, task: Task, now: datetime, context: EventContext, stopped: bool
) -> OutboxEvent:
    """Mark one locked record breached (at its due time) and write its ``SLABreached`` event."""
    record.status = Status.BREACHED
    record.breached_at = record.due_at
    record.next_warning_at = None
    if stopped:
        record.stopped_at = now
    record.version += 1
    record.save()
    transaction.on_commit(SLA_RECORDS_BREACHED.inc)
    return event_append(
        event_type=SLAEventType.SLA_BREACHED,
        aggregate_type=SLARecord.aggregate_type,
        aggregate_id=record.pk,
        sequence=record.version,
        context=context,
        payload={
            **_event_payload(record, task, record.config.name),
            "breached_at": record.breached_at.isoformat(),
            "detected_by": "completion" if stopped else "pause",
        },
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
    _schedule(record)


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
    """The task reached a final state: completed → met (or breached when late); cancelled → cancelled.

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
    record.save()


def sla_record_track_transition(*, task: Task, source: str, target: str, context: EventContext) -> None:
    """Apply a task transition to its SLA record (the ``post_transition`` receiver's one call)."""
    # Lock the record only (not its config: every task sharing the config would queue behind it). One
    # record per task, so no ordering; the config is read lazily, only on the rare breach-at-stop path.
    record = row_get(SLARecord, where={"task_id": task.pk}, lock=True)
    if record is None:
        return
    task.sla_record = record  # cached on the task: whoever renders it next (the API) needs no query
    now = timezone.now()
    if target == TaskState.COMPLETED:
        sla_record_stop(record=record, task=task, completed=True, now=now, context=context)
    elif target == TaskState.CANCELLED:
        sla_record_stop(record=record, task=task, completed=False, now=now, context=context)
    elif target in record.pause_states:
        sla_record_pause(record=record, task=task, now=now, context=context)
    else:
        sla_record_resume(record=record, now=now)


# --- The scan ------------------------------------------------------------------------------------------


@dataclass
class ScanResult:
    breached: int = 0
    warned: int = 0


def _iso_sql(column: str) -> str:
    """SQL rendering a UTC timestamp exactly as Python's ``datetime.isoformat()`` does (no ``.000000``)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    # ``%%``: the statement goes through the driver's parameter substitution.
    fraction = f"CASE WHEN extract(microseconds FROM {column})::bigint %% 1000000 <> 0"
    seconds = f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    return f"{seconds} || {fraction} THEN to_char({utc}, '.US') ELSE '' END || '+00:00'"


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

# The event payload, built in SQL; the same keys and formats as ``_event_payload`` (a test holds them equal).
_PAYLOAD_SQL = f"""jsonb_build_object(
    'task_id', t.id::text, 'title', t.title, 'task_type', t.task_type, 'service_area', t.service_area,
    'priority', t.priority, 'client_id', t.client_id, 'agency_id', t.agency_id::text,
    'assignee_id', t.assignee_id, 'action_plan_id', t.action_plan_id::text, 'task_state', t.state,
    'sla_record_id', c.id::text, 'config_name', cfg.name, 'target_minutes', c.target_minutes,
    'started_at', {_iso_sql("c.started_at")}, 'due_at', {_iso_sql("c.due_at")},
    'paused_seconds', c.paused_seconds, 'breached_at', {_iso_sql("c.due_at")}, 'detected_by', 'scan')"""


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
        "payload": _PAYLOAD_SQL,
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
            if p not in record.warnings_sent and _warning_instant(record, p, calendar) <= now
        ]
        first_sequence, sent_before = record.version + 1, list(record.warnings_sent)
        record.warnings_sent = sorted([*sent_before, *reached])
        record.version += len(reached)
        _schedule(record)
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
                payload={
                    **_event_payload(record, record.task, record.config.name),
                    "percentage": percentage,
                    "warning_at": _warning_instant(record, percentage, calendar).isoformat(),
                },
            )
            written += 1
    return written


def sla_scan(*, now: datetime | None = None, batch_size: int | None = None) -> ScanResult:
    """Breach running records past due and warn those past a warning percentage, exactly once each.

    Each batch is its own transaction: claimed with a compare-and-swap ``UPDATE … WHERE status = 'running'``
    (breaches) or ``FOR UPDATE SKIP LOCKED`` (warnings), so concurrent scans split the work and never
    repeat it. Both claims read partial indexes on running records: the cost follows what is due.
    """
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
