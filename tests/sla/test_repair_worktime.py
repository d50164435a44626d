"""The repair's lookup table gives exactly the due times the calendar walk gives (``sla.worktime``)."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from sla.calendar import Calendar, add_working_seconds
from sla.worktime import WorkingTime, WorkingTimeIndex

OFFICE = {
    "time_zone": "Europe/London",
    "working_hours": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
}
SPLIT_NIGHTS = {
    "time_zone": "America/New_York",
    "working_hours": {
        "mon": [["08:00", "12:00"], ["13:00", "17:30"]],
        "tue": [["22:00", "24:00"]],
        "wed": [["00:00", "24:00"]],
        "sat": [["10:00", "11:00"]],
    },
    "holidays": ["2026-03-09", "2026-11-03"],
}
COUNTRY = {
    "time_zone": "Europe/Berlin",
    "working_hours": {"mon": [["09:00", "17:00"]], "thu": [["07:15", "19:45"]]},
    "country_code": "DE",
}
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "definition", [OFFICE, SPLIT_NIGHTS, COUNTRY], ids=["office", "split-nights", "country"]
)
def test_the_index_equals_the_calendar_walk_across_dst_and_holidays(definition):
    calendar = Calendar.from_definition(definition)
    assert calendar is not None
    index = WorkingTimeIndex(calendar, ORIGIN)
    rng = random.Random(25)
    for _ in range(400):
        # Starts across the year (both DST changes), some exactly on interval edges; odd seconds too.
        start = ORIGIN + timedelta(
            minutes=rng.randrange(0, 365 * 24 * 60), microseconds=rng.choice([0, 0, 7])
        )
        seconds = rng.choice([60, 3600, 8 * 3600, 28_800 * 5 + 1, rng.uniform(1, 500_000), 19.8])
        assert index.add_seconds(start, seconds) == add_working_seconds(start, seconds, calendar), (
            start,
            seconds,
        )


def test_working_time_serves_24x7_and_starts_before_its_origin():
    calendar = Calendar.from_definition(OFFICE)
    worktime = WorkingTime(ORIGIN)
    start = datetime(2026, 6, 5, 16, 30, tzinfo=UTC)
    assert worktime.add_seconds(start, 3600, None) == start + timedelta(hours=1)
    assert worktime.add_seconds(start, 3600, calendar) == add_working_seconds(start, 3600, calendar)
    early = ORIGIN - timedelta(days=40)
    assert worktime.add_seconds(early, 3600, calendar) == add_working_seconds(early, 3600, calendar)
    assert worktime.add_seconds(start, 0, calendar) == start
