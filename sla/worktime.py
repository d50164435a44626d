"""Working time as a lookup table: many due times on one calendar without walking the calendar per record.

``sla.calendar.add_working_seconds`` walks a calendar's days from each record's start: right for one
record, but a repair re-measures up to hundreds of thousands of records on a handful of calendars. A
``WorkingTimeIndex`` lays a calendar's working intervals out once, with the working time elapsed up to the
end of each (in whole microseconds), so a due time is two bisections: the working time at the start, then
the interval where the target is reached. It gives exactly what ``add_working_seconds`` gives (the same
intervals, the same microsecond rounding; ``tests/sla/test_repair_worktime.py`` holds them equal) and falls
back to it for a calendar whose intervals are not in order (never seen; a safeguard, not a path).

Pure: no database.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, datetime, time, timedelta

from .calendar import MAX_SEARCH_DAYS, Calendar, CalendarError, add_working_seconds

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _us(instant: datetime) -> int:
    return (instant - EPOCH) // MICROSECOND


class WorkingTimeIndex:
    """The working intervals of ``calendar`` from ``origin`` on, extended forward as lookups need them."""

    def __init__(self, calendar: Calendar, origin: datetime) -> None:
        self.calendar = calendar
        self._begins: list[int] = []
        self._ends: list[int] = []
        self._cum_ends: list[int] = []  # working µs from the first interval's start to each interval's end
        self._next_day = origin.astimezone(calendar.zone).date() - timedelta(days=1)
        self._covered_until = _us(self._midnight())  # every interval beginning before this is loaded
        self.exact = True  # False: intervals out of order; lookups fall back to the calendar walk

    def _midnight(self) -> datetime:
        return datetime.combine(self._next_day, time(0), tzinfo=self.calendar.zone).astimezone(UTC)

    def _load_day(self) -> None:
        for begin, finish in self.calendar.intervals_on(self._next_day):
            b, e = _us(begin), _us(finish)
            if self._ends and b < self._ends[-1]:
                self.exact = False
            self._begins.append(b)
            self._ends.append(e)
            self._cum_ends.append((self._cum_ends[-1] if self._cum_ends else 0) + e - b)
        self._next_day += timedelta(days=1)
        self._covered_until = _us(self._midnight())

    def _worked_before(self, at: int) -> int:
        """Working µs from the first interval to ``at``."""
        while self._covered_until <= at:
            self._load_day()
        i = bisect_right(self._begins, at) - 1
        if i < 0:
            return 0
        if at < self._ends[i]:
            return self._cum_ends[i] - (self._ends[i] - at)
        return self._cum_ends[i]

    def add_seconds(self, start: datetime, seconds: float) -> datetime:
        """``add_working_seconds(start, seconds, calendar)``, by lookup."""
        if seconds <= 0:
            return start + timedelta(seconds=max(seconds, 0))
        if not self.exact:
            return add_working_seconds(start, seconds, self.calendar)
        at = _us(start)
        target = self._worked_before(at) + timedelta(seconds=seconds) // MICROSECOND
        last_day = start.astimezone(self.calendar.zone).date() + timedelta(days=MAX_SEARCH_DAYS)
        while not self._cum_ends or self._cum_ends[-1] < target:
            if self._next_day > last_day:
                raise CalendarError("The calendar has no working time within five years.")
            self._load_day()
        if not self.exact:
            return add_working_seconds(start, seconds, self.calendar)
        j = bisect_left(self._cum_ends, target)
        return EPOCH + MICROSECOND * (self._ends[j] - (self._cum_ends[j] - target))


class WorkingTime:
    """``add_seconds`` over any calendar (``None``: 24x7), one index per calendar, built on first use."""

    def __init__(self, origin: datetime) -> None:
        self.origin = origin
        self._indexes: dict[Calendar, WorkingTimeIndex] = {}

    def add_seconds(self, start: datetime, seconds: float, calendar: Calendar | None) -> datetime:
        if calendar is None:
            return start + timedelta(seconds=max(seconds, 0))
        if (
            start < self.origin
        ):  # earlier than an index covers: walk (never, when origin is the earliest start)
            return add_working_seconds(start, seconds, calendar)
        index = self._indexes.get(calendar)
        if index is None:
            index = self._indexes[calendar] = WorkingTimeIndex(calendar, self.origin)
        return index.add_seconds(start, seconds)
