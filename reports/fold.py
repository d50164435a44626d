"""A task's fold (what its events say, in any order) and the rollup contributions derived from it.

Pure functions, no database. The handler and the recomputation both go through here:

* ``fold_event`` folds one event into a task's ``Fold``. The result depends only on the *set* of events
  folded (steps are keyed by sequence, the classification follows the highest sequence, a breach is a
  flag), so delivery order, redelivery and late events cannot change it.
* ``contributions`` maps a fold to its rollup rows. The handler applies ``contributions(after) -
  contributions(before)`` for each task a batch touched, so the rollups are always the sum over tasks of
  ``contributions(fold)``: the same sum a recomputation from the history makes.

Instants are integer epoch milliseconds; buckets are UTC hours (``HOUR_MS``).
"""

from __future__ import annotations

from bisect import insort
from collections import Counter
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
CLOSED_STATES = (TaskState.COMPLETED.value, TaskState.CANCELLED.value)


class Metric:
    """The rollup metrics (``Rollup.metric``); ``state`` says which state or age band where it applies."""

    CREATED = "created"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    SLA_MET = "sla_met"  # completed with no SLABreached for the task, at the completion hour
    SLA_BREACHED = "sla_breached"  # completed after an SLABreached, at the completion hour
    STATE_MS = "state_ms"  # milliseconds spent in ``state``, at the hour the task left it
    STATE_EXITS = "state_exits"  # times a task left ``state``, at that hour
    BACKLOG = "backlog"  # +1/-1 when a task enters/leaves age band ``state`` (open tasks = running sum)
    BACKLOG_DAY = "backlog_day"  # the same deltas summed per UTC day (so a running sum reads few rows)


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
    breached: bool = False

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
        )


def _facts_take(fold: Fold, payload: dict[str, Any]) -> None:
    agency = payload.get("agency_id")
    fold.agency_id = str(agency) if agency else None
    fold.service_area = str(payload.get("service_area") or "")[:64]
    fold.task_type = str(payload.get("task_type") or "")[:64]


def fold_event(fold: Fold, *, event_type: str, sequence: int, at_ms: int, payload: dict[str, Any]) -> None:
    """Fold one event of (or about) ``fold``'s task into it; folding the same event twice changes nothing."""
    if event_type == BREACH_EVENT_TYPE:
        fold.breached = True
        if fold.facts_sequence == 0 and fold.agency_id is None:
            _facts_take(fold, payload)  # no task event seen yet: the breach's copy of the task's facts
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


def _floor_hour(ms: int) -> int:
    return ms - ms % HOUR_MS


def _backlog(fold: Fold, add: Any) -> None:
    """Deltas that make the running sum, at an hour boundary T, the open tasks by age band just before T:
    a task counts in band (lo, hi] at T when created + lo < T <= min(created + hi, closed)."""
    assert fold.created_ms is not None
    created = fold.created_ms
    last = fold.steps[-1] if fold.steps else None
    closed = last[1] if last is not None and last[2] in CLOSED_STATES else None
    for name, low, high in AGE_BANDS:
        enter = _floor_hour(created + low) + HOUR_MS
        ends = [at for at in (None if high is None else created + high, closed) if at is not None]
        leave = _floor_hour(min(ends)) + HOUR_MS if ends else None
        if leave is not None and leave <= enter:
            continue
        add(Metric.BACKLOG, enter, name, 1)
        add(Metric.BACKLOG_DAY, enter - enter % DAY_MS, name, 1)
        if leave is not None:
            add(Metric.BACKLOG, leave, name, -1)
            add(Metric.BACKLOG_DAY, leave - leave % DAY_MS, name, -1)


def contributions(fold: Fold) -> Counter[Key]:
    """The rollup rows this task accounts for (see the module docstring)."""
    out: Counter[Key] = Counter()
    dims = (fold.agency_id, fold.service_area, fold.task_type)

    def add(metric: str, bucket_ms: int, state: str, value: int) -> None:
        out[(metric, bucket_ms, *dims, state)] += value

    if fold.created_ms is not None:
        add(Metric.CREATED, _floor_hour(fold.created_ms), "", 1)
        _backlog(fold, add)
    previous = None
    for step in fold.steps:
        _, at_ms, state = step
        hour = _floor_hour(at_ms)
        if state == TaskState.COMPLETED:
            add(Metric.COMPLETED, hour, "", 1)
        elif state == TaskState.CANCELLED:
            add(Metric.CANCELLED, hour, "", 1)
        if previous is not None:
            add(Metric.STATE_MS, hour, previous[2], at_ms - previous[1])
            add(Metric.STATE_EXITS, hour, previous[2], 1)
        previous = step
    if previous is not None and previous[2] == TaskState.COMPLETED:
        metric = Metric.SLA_BREACHED if fold.breached else Metric.SLA_MET
        add(metric, _floor_hour(previous[1]), "", 1)
    # Without zero rows (a task that entered and left a band within one UTC day nets 0 in backlog_day).
    return Counter({key: value for key, value in out.items() if value})


def contributions_delta(before: Fold | None, after: Fold) -> Counter[Key]:
    """What applying ``after`` in place of ``before`` adds to the rollups (negative values subtract)."""
    delta = contributions(after)
    if before is not None:
        delta.subtract(contributions(before))
    return Counter({key: value for key, value in delta.items() if value})
