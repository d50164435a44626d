"""SLA what-if: what a proposed policy change (or a plain re-measurement) would do to SLA records.

A repair names a **change** (``Proposal``: a config's target, a config's calendar, a calendar's working
hours or holidays, or ``recompute`` — re-measure under the current policy) and a **scope** (``RepairScope``:
the open records, and optionally those closed in a window). Each record in scope is re-measured: its due
time recomputed from its start, the new target and calendar, and the working time it spent paused; then
judged breached or not at one instant, ``as_of``. The preview (``sla_repair_preview``) and the application
(``sla.repair_apply``) both measure with ``RepairMeasure``, so a dry run says exactly what applying does.

The preview is batched, not per record: one query streams the records' clock columns (the calendar
snapshot as its hash, decoded once per distinct snapshot), and due times come from ``sla.worktime`` (a
lookup table per calendar), never from walking a calendar per record.

What is kept as measured: ``paused_seconds`` (working time paused, measured on the calendar of the time),
``started_at``, the config the record matched. What is not re-judged: a cancelled task's outcome.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Min, Q, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import MD5, Cast
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from polaris.access import require_admin
from polaris.accounts.models import User
from polaris.errors import ValidationFailed
from workflow.models import TaskState

from .calendar import Calendar, CalendarError
from .models import BusinessCalendar, SLAConfig, SLARecord, SLARecordStatus
from .worktime import EPOCH, MICROSECOND, WorkingTime

Status = SLARecordStatus

MAX_WINDOW = timedelta(days=366)
MAX_PAGE = 500


class RepairKind:
    CONFIG_TARGET = "config_target"
    CONFIG_CALENDAR = "config_calendar"
    CALENDAR_HOURS = "calendar_hours"
    CALENDAR_HOLIDAYS = "calendar_holidays"
    RECOMPUTE = "recompute"


@dataclass(frozen=True)
class Proposal:
    """What changes. ``calendar`` is the calendar changed (``calendar_*``) or the config's new calendar
    (``config_calendar``; ``None`` there means 24x7)."""

    kind: str
    config: int | None = None
    calendar: int | None = None
    target_minutes: int | None = None
    hours: dict[str, list[list[str]]] | None = None
    holidays: list[str] | None = None

    def as_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None or key == "calendar"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proposal:
        return cls(**data)


@dataclass(frozen=True)
class RepairScope:
    """The open records (always), plus records closed in ``[closed_from, closed_to)`` when given."""

    closed_from: datetime | None = None
    closed_to: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        if self.closed_from is None or self.closed_to is None:
            return {"open": True}
        return {
            "open": True,
            "closed_from": self.closed_from.isoformat(),
            "closed_to": self.closed_to.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RepairScope:
        start, end = data.get("closed_from"), data.get("closed_to")
        return cls(parse_datetime(start) if start else None, parse_datetime(end) if end else None)

    def q(self) -> Q:
        scope = Q(stopped_at__isnull=True)
        if self.closed_from is not None and self.closed_to is not None:
            scope |= Q(stopped_at__gte=self.closed_from, stopped_at__lt=self.closed_to)
        return scope


def repair_scope_check(scope: RepairScope) -> None:
    """A closed window is bounded (at most ``MAX_WINDOW``) and not reversed."""
    if scope.closed_from is None and scope.closed_to is None:
        return
    if scope.closed_from is None or scope.closed_to is None:
        raise ValidationFailed(details={"scope": ["Give both closed_from and closed_to."]})
    if scope.closed_to <= scope.closed_from:
        raise ValidationFailed(details={"scope": {"closed_to": ["Must be after closed_from."]}})
    if scope.closed_to - scope.closed_from > MAX_WINDOW:
        message = f"At most {MAX_WINDOW.days} days after closed_from."
        raise ValidationFailed(details={"scope": {"closed_to": [message]}})


def _calendar_with(proposal: Proposal, calendar: BusinessCalendar) -> dict[str, Any]:
    definition = calendar.definition()
    if proposal.hours is not None:
        definition["working_hours"] = proposal.hours
    if proposal.holidays is not None:
        definition["holidays"] = sorted(set(proposal.holidays))
    return definition


def proposal_check(proposal: Proposal) -> None:
    """The objects it names exist and the calendar it proposes can be used; ``ValidationFailed`` if not."""
    if proposal.config is not None and not SLAConfig.objects.filter(pk=proposal.config).exists():
        message = f"SLA config {proposal.config} does not exist."
        raise ValidationFailed(message, details={"config": [message]})
    if proposal.calendar is None:
        return
    calendar = BusinessCalendar.objects.filter(pk=proposal.calendar).first()
    if calendar is None:
        message = f"Business calendar {proposal.calendar} does not exist."
        raise ValidationFailed(message, details={"calendar": [message]})
    try:
        Calendar.from_definition(_calendar_with(proposal, calendar))
    except CalendarError as exc:
        key = "holidays" if proposal.holidays is not None else "hours"
        raise ValidationFailed(details={key: [str(exc)]}) from None


def repair_records(proposal: Proposal, scope: RepairScope) -> QuerySet[SLARecord]:
    """The records a repair re-measures: in scope, and governed by what the proposal changes."""
    records = SLARecord.objects.filter(scope.q())
    if proposal.kind in (RepairKind.CONFIG_TARGET, RepairKind.CONFIG_CALENDAR):
        records = records.filter(config_id=proposal.config)
    elif proposal.kind in (RepairKind.CALENDAR_HOURS, RepairKind.CALENDAR_HOLIDAYS):
        records = records.filter(config__calendar_id=proposal.calendar)
    return records


@dataclass(frozen=True)
class Measurement:
    """One record under its current measurement and the proposed one."""

    old_due: datetime
    new_due: datetime
    old_breached: bool
    new_breached: bool
    old_target: int
    new_target: int
    new_calendar: Calendar | None
    changed: bool


def _judged_breached(
    *,
    status: str,
    due: datetime,
    paused_at: datetime | None,
    stopped_at: datetime | None,
    task_state: str,
    as_of: datetime,
) -> bool:
    """Breached by a measurement whose due time is ``due``: an open clock once due passes (a paused clock
    stopped at ``paused_at``); a completed task when it completed after ``due``. A cancelled task's
    outcome is not re-judged."""
    if stopped_at is None:
        if status == Status.PAUSED:
            return paused_at is not None and due <= paused_at
        return due <= as_of
    if task_state == TaskState.CANCELLED:
        return status == Status.BREACHED
    return due < stopped_at


class RepairMeasure:
    """Re-measures records under a proposal at ``as_of``; the one rule for preview and application."""

    def __init__(self, proposal: Proposal, *, as_of: datetime, origin: datetime) -> None:
        self.proposal, self.as_of = proposal, as_of
        self.worktime = WorkingTime(origin)
        self.new_calendar: Calendar | None = None
        self.configs: dict[int, tuple[int, Calendar | None]] = {}
        # The definition (the JSON a record snapshots) of each calendar the proposal gives records.
        self.definitions: dict[Calendar, dict[str, Any]] = {}
        if proposal.kind == RepairKind.RECOMPUTE:
            for config in SLAConfig.objects.select_related("calendar"):
                definition = config.calendar.definition() if config.calendar else None
                self.configs[config.pk] = (config.target_minutes, self._parse(definition))
        elif proposal.calendar is not None:
            calendar = BusinessCalendar.objects.get(pk=proposal.calendar)
            self.new_calendar = self._parse(_calendar_with(proposal, calendar))

    def _parse(self, definition: dict[str, Any] | None) -> Calendar | None:
        calendar = Calendar.from_definition(definition)
        if calendar is not None and definition is not None:
            self.definitions[calendar] = definition
        return calendar

    def policy(self, config_id: int, target: int, calendar: Calendar | None) -> tuple[int, Calendar | None]:
        """The (target, calendar) the proposal gives a record now measured with (target, calendar)."""
        kind = self.proposal.kind
        if kind == RepairKind.RECOMPUTE:
            return self.configs[config_id]
        if kind == RepairKind.CONFIG_TARGET:
            assert self.proposal.target_minutes is not None
            return self.proposal.target_minutes, calendar
        return target, self.new_calendar

    def measure(
        self,
        *,
        config_id: int,
        target: int,
        calendar: Calendar | None,
        status: str,
        started_at: datetime,
        due_at: datetime,
        paused_seconds: int,
        paused_at: datetime | None,
        stopped_at: datetime | None,
        task_state: str,
    ) -> Measurement:
        new_target, new_calendar = self.policy(config_id, target, calendar)
        new_due = self.worktime.add_seconds(started_at, new_target * 60 + paused_seconds, new_calendar)

        def judged(due: datetime) -> bool:
            return _judged_breached(
                status=status,
                due=due,
                paused_at=paused_at,
                stopped_at=stopped_at,
                task_state=task_state,
                as_of=self.as_of,
            )

        # What the record says counts too: a breach the scan recorded stays the old measurement's.
        old_breached = status == Status.BREACHED or judged(due_at)
        new_breached = judged(new_due)
        changed = (new_due, new_breached, new_target, new_calendar) != (
            due_at,
            old_breached,
            target,
            calendar,
        )
        return Measurement(
            due_at, new_due, old_breached, new_breached, target, new_target, new_calendar, changed
        )

    def measure_record(self, record: SLARecord) -> Measurement:
        return self.measure(
            config_id=record.config_id,
            target=record.target_minutes,
            calendar=record.calendar,
            status=record.status,
            started_at=record.started_at,
            due_at=record.due_at,
            paused_seconds=record.paused_seconds,
            paused_at=record.paused_at,
            stopped_at=record.stopped_at,
            task_state=record.task.state,
        )


@dataclass
class RepairTotals:
    total: int = 0
    changed: int = 0
    unchanged: int = 0
    newly_breached: int = 0
    no_longer_breached: int = 0

    def add(self, measurement: Measurement) -> None:
        self.total += 1
        self.changed += measurement.changed
        self.unchanged += not measurement.changed
        self.newly_breached += measurement.new_breached and not measurement.old_breached
        self.no_longer_breached += measurement.old_breached and not measurement.new_breached


@dataclass
class RepairPreview:
    as_of: datetime
    totals: RepairTotals
    records: list[dict[str, Any]] = field(default_factory=list)


_COLUMNS = (
    "id",
    "task_id",
    "config_id",
    "target_minutes",
    "calendar_key",
    "status",
    "started_us",
    "due_us",
    "paused_seconds",
    "paused_us",
    "stopped_us",
    "task__state",
)


def _epoch_us(column: str) -> RawSQL:
    """A timestamp column as microseconds since the epoch: an integer is read far faster than the ISO text
    psycopg would parse into a datetime for every row (most of the preview's cost at 100,000 records).
    ``column`` is one of this module's own column names, never input."""
    return RawSQL(f'(extract(epoch from "{SLARecord._meta.db_table}"."{column}") * 1000000)::bigint', ())  # noqa: S611


def _instant(us: int | None) -> datetime | None:
    return None if us is None else EPOCH + MICROSECOND * us


def _snapshots(records: QuerySet[SLARecord]) -> dict[str | None, Calendar | None]:
    """Each distinct calendar snapshot in ``records``, by its hash, parsed once."""
    rows = (
        records.annotate(calendar_key=MD5(Cast("calendar_snapshot", TextField())))
        .order_by("calendar_key")
        .distinct("calendar_key")
        .values_list("calendar_key", "calendar_snapshot")
    )
    return {key: Calendar.from_definition(snapshot) for key, snapshot in rows}


def sla_repair_preview(
    *,
    actor: User | None,
    proposal: Proposal,
    scope: RepairScope,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> RepairPreview:
    """What applying ``proposal`` to ``scope`` would do, changing nothing: the totals, and the changed
    records ``offset`` … ``offset + limit`` (in due order)."""
    require_admin(actor, "Only admins repair SLA records.")
    proposal_check(proposal)
    repair_scope_check(scope)
    as_of = now or timezone.now()
    preview = RepairPreview(as_of=as_of, totals=RepairTotals())
    records = repair_records(proposal, scope)
    origin = records.aggregate(origin=Min("started_at"))["origin"]
    if origin is None:
        return preview
    measure = RepairMeasure(proposal, as_of=as_of, origin=origin)
    calendars = _snapshots(records)
    rows = (
        records.annotate(
            calendar_key=MD5(Cast("calendar_snapshot", TextField())),
            started_us=_epoch_us("started_at"),
            due_us=_epoch_us("due_at"),
            paused_us=_epoch_us("paused_at"),
            stopped_us=_epoch_us("stopped_at"),
        )
        .order_by("due_at", "id")
        .values_list(*_COLUMNS)
    )
    totals, page_end = preview.totals, offset + min(limit, MAX_PAGE)
    for row in rows.iterator(chunk_size=5000):
        (
            record_id,
            task_id,
            config_id,
            target,
            key,
            status,
            started,
            due,
            paused,
            paused_at,
            stopped,
            state,
        ) = row
        m = measure.measure(
            config_id=config_id,
            target=target,
            calendar=calendars[key],
            status=status,
            started_at=EPOCH + MICROSECOND * started,
            due_at=EPOCH + MICROSECOND * due,
            paused_seconds=paused,
            paused_at=_instant(paused_at),
            stopped_at=_instant(stopped),
            task_state=state,
        )
        if m.changed and offset <= totals.changed < page_end:
            preview.records.append(
                {
                    "sla_record": record_id,
                    "task": task_id,
                    "old_due_at": m.old_due,
                    "new_due_at": m.new_due,
                    "old_breached": m.old_breached,
                    "new_breached": m.new_breached,
                    "old_target_minutes": m.old_target,
                    "new_target_minutes": m.new_target,
                }
            )
        totals.add(m)
    return preview
