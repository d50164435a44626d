"""Business-time arithmetic (pure, no database): nights, weekends, holidays, time zones and DST."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import (
    DEFAULT_WORKING_HOURS,
    Calendar,
    CalendarError,
    add_working_minutes,
    add_working_seconds,
    working_seconds_between,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def office(zone="Europe/London", **extra):
    return Calendar.from_definition({"time_zone": zone, "working_hours": DEFAULT_WORKING_HOURS, **extra})


def local(zone, *args):
    return datetime(*args, tzinfo=zone)


def test_no_calendar_is_24x7():
    start = datetime(2026, 3, 7, 23, 30, tzinfo=UTC)  # a Saturday night
    assert add_working_minutes(start, 60, None) == start + timedelta(hours=1)
    assert working_seconds_between(start, start + timedelta(days=2), None) == 2 * 86400


def test_overnight_carries_to_the_next_morning():
    start = local(LONDON, 2026, 3, 2, 16, 30)  # Monday 16:30
    assert add_working_minutes(start, 60, office()) == local(LONDON, 2026, 3, 3, 9, 30)


def test_before_opening_starts_counting_at_opening():
    start = local(LONDON, 2026, 3, 2, 6, 0)
    assert add_working_minutes(start, 30, office()) == local(LONDON, 2026, 3, 2, 9, 30)


def test_weekend_is_skipped():
    friday = local(LONDON, 2026, 3, 6, 16, 0)
    assert add_working_minutes(friday, 120, office()) == local(LONDON, 2026, 3, 9, 10, 0)
    saturday = local(LONDON, 2026, 3, 7, 12, 0)
    assert add_working_minutes(saturday, 60, office()) == local(LONDON, 2026, 3, 9, 10, 0)


def test_explicit_holidays_are_skipped():
    calendar = office(holidays=["2026-12-25"])
    christmas_eve = local(LONDON, 2026, 12, 24, 16, 0)  # Thursday
    assert add_working_minutes(christmas_eve, 120, calendar) == local(LONDON, 2026, 12, 28, 10, 0)


def test_country_holidays_come_from_the_holidays_package():
    calendar = office(country_code="GB")  # 25 Dec, and Boxing Day observed on Monday 28 Dec
    christmas_eve = local(LONDON, 2026, 12, 24, 16, 0)
    assert add_working_minutes(christmas_eve, 120, calendar) == local(LONDON, 2026, 12, 29, 10, 0)


def test_working_hours_are_local_to_the_calendar_time_zone():
    start = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # Monday 16:00 in New York (EST, UTC-5)
    due = add_working_minutes(start, 120, office("America/New_York"))
    assert due == datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # Tuesday 10:00 EST
    # The same instant on a London calendar is after hours (21:00 GMT).
    assert add_working_minutes(start, 120, office()) == datetime(2026, 3, 3, 11, 0, tzinfo=UTC)


def test_dst_change_over_a_weekend_keeps_local_opening_hours():
    friday = local(NEW_YORK, 2026, 3, 6, 16, 0)  # EST; clocks go forward on Sunday 8 March
    due = add_working_minutes(friday, 120, office("America/New_York"))
    assert due == local(NEW_YORK, 2026, 3, 9, 10, 0)
    assert due.astimezone(UTC) == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)  # EDT, UTC-4


def test_a_round_the_clock_calendar_counts_the_real_length_of_a_dst_day():
    all_day = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    calendar = Calendar.from_definition({"time_zone": "Europe/London", "working_hours": all_day})
    # 29 March 2026: London springs forward, the day has 23 hours.
    sunday, monday = local(LONDON, 2026, 3, 29, 0, 0), local(LONDON, 2026, 3, 30, 0, 0)
    assert working_seconds_between(sunday, monday, calendar) == 23 * 3600
    # 25 October 2026: clocks go back, the day has 25 hours.
    assert (
        working_seconds_between(local(LONDON, 2026, 10, 25), local(LONDON, 2026, 10, 26), calendar)
        == 25 * 3600
    )
    start = local(LONDON, 2026, 3, 28, 12, 0)
    assert add_working_minutes(start, 24 * 60, calendar) == start.astimezone(UTC) + timedelta(hours=24)


def test_working_seconds_between_counts_only_working_time():
    calendar = office()
    friday_noon, monday_noon = local(LONDON, 2026, 3, 6, 12, 0), local(LONDON, 2026, 3, 9, 12, 0)
    assert working_seconds_between(friday_noon, monday_noon, calendar) == 8 * 3600
    assert working_seconds_between(monday_noon, friday_noon, calendar) == -8 * 3600


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "time zone"),
        ({"time_zone": "UTC", "working_hours": {"mon": []}}, "no working hours"),
        ({"time_zone": "UTC", "working_hours": {"mon": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "overlap"),
        ({"time_zone": "UTC", "working_hours": {"mon": [["17:00", "09:00"]]}}, "does not end"),
        ({"time_zone": "UTC", "working_hours": {"mon": [["9am", "5pm"]]}}, "HH:MM"),
        ({"time_zone": "UTC", "working_hours": DEFAULT_WORKING_HOURS, "holidays": ["Christmas"]}, "ISO"),
        ({"time_zone": "UTC", "working_hours": DEFAULT_WORKING_HOURS, "country_code": "XX"}, "holidays"),
    ],
)
def test_unusable_calendars_are_refused(definition, message):
    with pytest.raises(CalendarError, match=message):
        Calendar.from_definition(definition)


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    seconds=st.integers(min_value=1, max_value=30 * 8 * 3600),
    zone=st.sampled_from(["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]),
)
def test_adding_working_time_and_measuring_it_agree(start, seconds, zone):
    calendar = office(zone, country_code="GB" if zone == "Europe/London" else "")
    due = add_working_seconds(start, seconds, calendar)
    assert due > start
    assert working_seconds_between(start, due, calendar) == pytest.approx(seconds)
