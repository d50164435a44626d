"""Business-time arithmetic: pure functions over a calendar definition, no database.

A calendar definition is the JSON a ``BusinessCalendar`` snapshots into an ``SLARecord``::

    {"time_zone": "Europe/London",
     "working_hours": {"mon": [["09:00", "17:00"]], ..., "sat": [], "sun": []},
     "holidays": ["2026-12-25"],
     "country_code": "GB", "subdivision": ""}

``None`` means 24x7: every second counts. Working hours are local wall-clock times in the calendar's time
zone; each interval is turned into real instants with ``zoneinfo``, so a working day that spans a DST
change is as long as it really is, and "09:00" is 09:00 local on both sides of the change. ``"24:00"``
ends an interval at the next midnight.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_WORKING_HOURS: dict[str, list[list[str]]] = {
    **{day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]},
    "sat": [],
    "sun": [],
}
# A calendar with working time somewhere in every week finds it within 8 days; holidays can stretch that,
# but no real calendar has years without a working minute. The bound turns a misconfiguration into an
# error instead of an endless loop.
MAX_SEARCH_DAYS = 366 * 5


class CalendarError(ValueError):
    """A calendar definition that cannot be used (bad zone, bad hours, no working time at all)."""


def _parse_clock(value: str) -> tuple[time, bool]:
    """``"HH:MM"`` → (time, is_end_of_day)."""
    if value == "24:00":
        return time(0, 0), True
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes)), False
    except (ValueError, AttributeError):
        raise CalendarError(f"{value!r} is not a HH:MM time.") from None


@dataclass(frozen=True)
class Calendar:
    """A parsed calendar definition (hashable, so interval lookups can be cached)."""

    zone: ZoneInfo
    # weekday (Monday = 0) → local (start, end, end_is_next_midnight) intervals, sorted, non-overlapping
    hours: tuple[tuple[tuple[time, time, bool], ...], ...]
    holidays: frozenset[date]
    country_code: str = ""
    subdivision: str = ""

    @classmethod
    def from_definition(cls, definition: dict[str, Any] | None) -> Calendar | None:
        """Parse (and validate) a definition; ``None`` stays ``None`` (24x7)."""
        if definition is None:
            return None
        return _parse(_freeze(definition))

    def is_holiday(self, day: date) -> bool:
        if day in self.holidays:
            return True
        if self.country_code:
            return day in _country_holidays(self.country_code, self.subdivision, day.year)
        return False

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of one local day, as UTC instants."""
        if self.is_holiday(day):
            return []
        result = []
        for start, end, end_of_day in self.hours[day.weekday()]:
            begin = datetime.combine(day, start, tzinfo=self.zone).astimezone(UTC)
            end_day = day + timedelta(days=1) if end_of_day else day
            finish = datetime.combine(end_day, end, tzinfo=self.zone).astimezone(UTC)
            if finish > begin:
                result.append((begin, finish))
        return result

    def intervals_from(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) that end after ``instant``, clipped to start at it, in order."""
        day = instant.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(MAX_SEARCH_DAYS):
            for begin, finish in self.intervals_on(day):
                if finish > instant:
                    yield max(begin, instant), finish
            day += timedelta(days=1)
        raise CalendarError("The calendar has no working time within five years.")


def _freeze(definition: dict[str, Any]) -> tuple:
    hours = definition.get("working_hours") or {}
    return (
        definition.get("time_zone") or "UTC",
        tuple(tuple(tuple(pair) for pair in hours.get(day, [])) for day in WEEKDAYS),
        tuple(sorted(definition.get("holidays") or [])),
        (definition.get("country_code") or "").upper(),
        definition.get("subdivision") or "",
    )


@functools.lru_cache(maxsize=256)
def _parse(frozen: tuple) -> Calendar:
    zone_name, hours, holidays, country_code, subdivision = frozen
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"Unknown time zone {zone_name!r}.") from None
    week = []
    for day_name, intervals in zip(WEEKDAYS, hours, strict=True):
        parsed = []
        for pair in intervals:
            if len(pair) != 2:
                raise CalendarError(f"{day_name}: each interval is [start, end].")
            start, start_is_eod = _parse_clock(pair[0])
            end, end_of_day = _parse_clock(pair[1])
            if start_is_eod or (not end_of_day and end <= start):
                raise CalendarError(f"{day_name}: {pair[0]}-{pair[1]} does not end after it starts.")
            parsed.append((start, end, end_of_day))
        parsed.sort(key=lambda item: item[0])
        for (_, prev_end, prev_eod), (next_start, _, _) in itertools.pairwise(parsed):
            if prev_eod or prev_end > next_start:
                raise CalendarError(f"{day_name}: working intervals overlap.")
        week.append(tuple(parsed))
    if not any(week):
        raise CalendarError("The calendar has no working hours on any weekday.")
    try:
        holiday_dates = frozenset(date.fromisoformat(value) for value in holidays)
    except (TypeError, ValueError):
        raise CalendarError("Holidays must be ISO dates (YYYY-MM-DD).") from None
    if country_code:
        _country_holidays(country_code, subdivision, 2000)  # raises CalendarError when unknown
    return Calendar(
        zone=zone,
        hours=tuple(week),
        holidays=holiday_dates,
        country_code=country_code,
        subdivision=subdivision,
    )


@functools.lru_cache(maxsize=512)
def _country_holidays(country_code: str, subdivision: str, year: int) -> frozenset[date]:
    import holidays

    try:
        table = holidays.country_holidays(country_code, subdiv=subdivision or None, years=year)
    except NotImplementedError:
        raise CalendarError(f"The holidays package does not know {country_code!r}.") from None
    return frozenset(table.keys())


def add_working_seconds(start: datetime, seconds: float, calendar: Calendar | None) -> datetime:
    """The instant at which ``seconds`` of working time have elapsed after ``start``."""
    if seconds <= 0 or calendar is None:
        return start + timedelta(seconds=max(seconds, 0))
    remaining = timedelta(seconds=seconds)
    for begin, finish in calendar.intervals_from(start):
        available = finish - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    raise AssertionError("unreachable: intervals_from raises when it runs out")  # pragma: no cover


def add_working_minutes(start: datetime, minutes: float, calendar: Calendar | None) -> datetime:
    """The instant at which ``minutes`` of working time have elapsed after ``start`` (24x7 if no calendar)."""
    return add_working_seconds(start, minutes * 60, calendar)


def working_seconds_between(start: datetime, end: datetime, calendar: Calendar | None) -> float:
    """Working seconds in ``[start, end)``; negative when ``end`` is before ``start``."""
    if end < start:
        return -working_seconds_between(end, start, calendar)
    if calendar is None:
        return (end - start).total_seconds()
    total = 0.0
    for begin, finish in calendar.intervals_from(start):
        if begin >= end:
            break
        total += (min(finish, end) - begin).total_seconds()
    return total
