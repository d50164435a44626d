"""A task's fold (what its events say, in any order) and the rollup contributions derived from it.

Pure functions, no database. The handler and the recomputation both go through here:

* ``fold_event`` folds one event into a task's ``Fold``. The result depends only on the *set* of events
  folded (steps are keyed by sequence, the classification follows the highest sequence, each SLA
  record's outcome follows its outcome event with the highest sequence), so delivery order, redelivery
  and late events cannot change it. (One corner: a task known only from SLA events takes its
  classification from the first one folded; its first task event replaces it. Such a fold contributes
  nothing until then.)
* **SLA outcomes.** ``SLAMet`` (completed on time), ``SLABreached`` and ``SLARecalculated`` (a repair's
  new measurement, its ``breached``) are a record's outcome events; per record (``sla_record_id``) the
  one with the highest sequence (the record's version) decides whether it is breached, so attainment
  follows the *current* measurement. A completed task counts in attainment only if it has an outcome
  (no SLA record, no outcome: not "met"); it is breached when any of its records is. Older payloads:
  an ``SLABreached`` without ``sla_record_id`` is a sticky breach (as before), an ``SLARecalculated``
  without a boolean ``breached`` is not folded.
* ``contributions`` maps a fold to its rollup rows. The handler applies ``contributions(after) -
  contributions(before)`` for each task a batch touched, so the rollups are always the sum over tasks of
  ``contributions(fold)``: the same sum a recomputation from the history makes.

Instants are integer epoch milliseconds; buckets are UTC hours (``HOUR_MS``).
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from typing import Any

from sla.events import SLAEventType
from workflow.events import EventType
from workflow.states import TaskState

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

TASK_EVENT_TYPES = (
    EventType.TASK_CREATED,
    EventType.TASK_STATE_CHANGED,
    EventType.TASK_UPDATED,
    EventType.TASK_ASSIGNED,
)
BREACH_EVENT_TYPE = SLAEventType.SLA_BREACHED
RECALCULATED_EVENT_TYPE = SLAEventType.SLA_RECALCULATED
MET_EVENT_TYPE = SLAEventType.SLA_MET
# The SLA events the rollups read (aggregate ``sla_record``; the task is the payload's ``task_id``).
SLA_OUTCOME_EVENT_TYPES = (BREACH_EVENT_TYPE, RECALCULATED_EVENT_TYPE, MET_EVENT_TYPE)
COMPLETED, CANCELLED = TaskState.COMPLETED.value, TaskState.CANCELLED.value
CLOSED_STATES = (COMPLETED, CANCELLED)


class Metric:
    """The rollup metrics (``Rollup.metric``); ``state`` says which state or age band where it applies."""

    CREATED = "created"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    SLA_MET = "sla_met"  # completed, had an SLA outcome, none breached: at the completion hour
    SLA_BREACHED = "sla_breached"  # completed, a record's current outcome breached: at the completion hour
    STATE_MS = "state_ms"  # milliseconds spent in ``state``, at the hour the task left it
    STATE_EXITS = "state_exits"  # times a task left ``state``, at that hour
    BACKLOG = "backlog"  # +1/-1 when a task enters/leaves age band ``state`` (open tasks = running sum)
    BACKLOG_DAY = "backlog_day"  # the same deltas summed per UTC day (so a running sum reads few rows)


# The completion metrics are keyed by the state's own name (the hot loop uses the state as the metric).
assert (TaskState.COMPLETED.value, TaskState.CANCELLED.value) == (Metric.COMPLETED, Metric.CANCELLED)


# Age bands of open tasks: (name, lower bound, upper bound or None), age in (lower, upper].
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-1d", 0, DAY_MS),
    ("1-3d", DAY_MS, 3 * DAY_MS),
    ("3-7d", 3 * DAY_MS, 7 * DAY_MS),
    ("7-30d", 7 * DAY_MS, 30 * DAY_MS),
    ("30d+", 30 * DAY_MS, None),
)
AGE_BAND_NAMES = tuple(name for name, _, _ in AGE_BANDS)

# (metric, bucket start in epoch ms, agency id, service area, task type, state) -> value
Key = tuple[str, int, str | None, str, str, str]


@dataclass
class Fold:
    task_id: str
    agency_id: str | None = None
    service_area: str = ""
    task_type: str = ""
    facts_sequence: int = 0
    created_ms: int | None = None
    steps: list[list[Any]] = field(default_factory=list)  # [[sequence, epoch_ms, new_state], …] by sequence
    breached: bool = False  # an SLABreached without ``sla_record_id`` (older payloads): sticky
    sla: dict[str, list[Any]] = field(default_factory=dict)  # record id -> [sequence, breached], latest

    def copy(self) -> Fold:
        return Fold(
            self.task_id,
            self.agency_id,
            self.service_area,
            self.task_type,
            self.facts_sequence,
            self.created_ms,
            [list(step) for step in self.steps],
            self.breached,
            {record: list(outcome) for record, outcome in self.sla.items()},
        )

    @property
    def sla_tracked(self) -> bool:
        """Whether the task had an SLA outcome (only such tasks count in attainment)."""
        return bool(self.sla) or self.breached

    @property
    def sla_breached(self) -> bool:
        """Breached under the current measurements: any record whose latest outcome is a breach."""
        return self.breached or any(outcome[1] for outcome in self.sla.values())


def _facts_take(fold: Fold, payload: dict[str, Any]) -> None:
    agency = payload.get("agency_id")
    fold.agency_id = str(agency) if agency else None
    fold.service_area = str(payload.get("service_area") or "")[:64]
    fold.task_type = str(payload.get("task_type") or "")[:64]


def _outcome_fold(fold: Fold, *, event_type: str, sequence: int, payload: dict[str, Any]) -> None:
    """An SLA record's outcome event: the record's outcome with the highest sequence is kept."""
    if fold.facts_sequence == 0 and fold.agency_id is None:
        _facts_take(fold, payload)  # no task event seen yet: the SLA event's copy of the task's facts
    if event_type == RECALCULATED_EVENT_TYPE:
        breached = payload.get("breached")
        if not isinstance(breached, bool):
            return  # a payload without the outcome: not folded
    else:
        breached = event_type == BREACH_EVENT_TYPE
    record = payload.get("sla_record_id")
    if not record or not isinstance(record, str):
        if breached:
            fold.breached = True  # an older breach payload: a sticky breach of the task
        return
    outcome = fold.sla.get(record)
    if outcome is None or sequence > outcome[0]:
        fold.sla[record] = [sequence, breached]


def fold_event(fold: Fold, *, event_type: str, sequence: int, at_ms: int, payload: dict[str, Any]) -> None:
    """Fold one event of (or about) ``fold``'s task into it; folding the same event twice changes nothing."""
    if event_type in SLA_OUTCOME_EVENT_TYPES:
        _outcome_fold(fold, event_type=event_type, sequence=sequence, payload=payload)
        return
    if sequence > fold.facts_sequence:
        _facts_take(fold, payload)
        fold.facts_sequence = sequence
    if event_type == EventType.TASK_CREATED:
        fold.created_ms = at_ms
    stepped = event_type in (EventType.TASK_CREATED, EventType.TASK_STATE_CHANGED)
    if stepped and all(step[0] != sequence for step in fold.steps):
        state = payload.get("new_state") or TaskState.NEW.value
        insort(fold.steps, [sequence, at_ms, str(state)[:16]], key=lambda step: step[0])


def contributions(fold: Fold) -> dict[Key, int]:
    """The rollup rows this task accounts for (see the module docstring); no zero rows.

    ``backlog_day`` rows are not here: the statement that adds ``backlog`` deltas also adds their sums per
    UTC day (``polaris.sql.reports.rollup_add_sql``), which keeps this hot loop short.
    """
    out: dict[Key, int] = {}
    agency, area, task_type = fold.agency_id, fold.service_area, fold.task_type
    get = out.get
    created = fold.created_ms
    steps = fold.steps
    if created is not None:
        key: Key = (Metric.CREATED, created - created % HOUR_MS, agency, area, task_type, "")
        out[key] = get(key, 0) + 1
        # Backlog: at an hour boundary T a task counts in band (lo, hi] when
        # created + lo < T <= min(created + hi, closed): +1 from the first such T, -1 after the last.
        last = steps[-1] if steps else None
        closed = last[1] if last is not None and last[2] in CLOSED_STATES else None
        for name, low, high in AGE_BANDS:
            start = created + low
            enter = start - start % HOUR_MS + HOUR_MS
            end = closed if high is None else created + high
            if closed is not None and end is not None and closed < end:
                end = closed
            if end is not None:
                leave = end - end % HOUR_MS + HOUR_MS
                if leave <= enter:
                    continue  # never in this band at an hour boundary
                key = (Metric.BACKLOG, leave, agency, area, task_type, name)
                out[key] = get(key, 0) - 1
            key = (Metric.BACKLOG, enter, agency, area, task_type, name)
            out[key] = get(key, 0) + 1
    previous = None
    for step in steps:
        at_ms, state = step[1], step[2]
        hour = at_ms - at_ms % HOUR_MS
        if state in CLOSED_STATES:
            key = (state, hour, agency, area, task_type, "")
            out[key] = get(key, 0) + 1
        if previous is not None:
            key = (Metric.STATE_MS, hour, agency, area, task_type, previous[2])
            out[key] = get(key, 0) + at_ms - previous[1]
            key = (Metric.STATE_EXITS, hour, agency, area, task_type, previous[2])
            out[key] = get(key, 0) + 1
        previous = step
    if previous is not None and previous[2] == COMPLETED and fold.sla_tracked:
        metric = Metric.SLA_BREACHED if fold.sla_breached else Metric.SLA_MET
        key = (metric, previous[1] - previous[1] % HOUR_MS, agency, area, task_type, "")
        out[key] = get(key, 0) + 1
    return {key: value for key, value in out.items() if value}


def contributions_add(total: dict[Key, int], fold: Fold, *, sign: int = 1) -> None:
    """Add ``sign`` times ``fold``'s contributions into ``total`` (the handler's running delta)."""
    for key, value in contributions(fold).items():
        total[key] = total.get(key, 0) + sign * value
