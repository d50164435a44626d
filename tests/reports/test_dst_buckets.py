"""Local buckets across a DST change: a day is local midnight to local midnight (23 or 25 hours), and an
event lands in the local day its instant belongs to, whichever side of the change it is."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from outbox.dispatcher import outbox_dispatch
from outbox.models import OutboxEvent
from reports.selectors import ReportFilters, report_throughput
from reports.window import window_make

from .history import task_event

# (zone, the spring-forward Sunday, the fall-back Sunday) in 2026.
ZONES = [
    ("Europe/Berlin", date(2026, 3, 29), date(2026, 10, 25)),
    ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
]


@pytest.mark.parametrize(("tz", "spring", "fall"), ZONES)
def test_days_are_23_and_25_hours_long_at_the_changes(tz, spring, fall):
    for change, hours in ((spring, 23), (fall, 25)):
        window = window_make(first=change - timedelta(days=1), last=change + timedelta(days=1), tz=tz)
        lengths = [(b.end - b.start) / timedelta(hours=1) for b in window.buckets]
        assert lengths == [24, hours, 24]
        assert window.buckets[1].local_start(window.zone).endswith(("+01:00", "+02:00", "-05:00", "-04:00"))
        assert window.buckets[1].local_start(window.zone)[11:19] == "00:00:00"


def _created(at: datetime, agency_id) -> None:
    OutboxEvent.objects.bulk_create(
        [
            task_event(
                task_id=uuid.uuid4(),
                event_type="TaskCreated",
                sequence=1,
                at=at,
                agency_id=agency_id,
                new_state="new",
            )
        ]
    )


@pytest.mark.parametrize(("tz", "spring", "fall"), ZONES)
def test_events_land_in_their_local_day_either_side_of_the_change(tz, spring, fall, agency):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    for change in (spring, fall):
        midnight_after = datetime.combine(change + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        # The last minutes of the change day, and the first of the next one (local time).
        _created((midnight_after - timedelta(minutes=30)).astimezone(UTC), agency.pk)
        _created((midnight_after + timedelta(minutes=30)).astimezone(UTC), agency.pk)
        # And 00:30 local on the change day itself (before the change).
        _created(
            datetime.combine(change, datetime.min.time(), tzinfo=zone).astimezone(UTC)
            + timedelta(minutes=30),
            agency.pk,
        )
    outbox_dispatch(budget_seconds=30)
    for change in (spring, fall):
        window = window_make(first=change, last=change + timedelta(days=1), tz=tz)
        rows = report_throughput(window=window, filters=ReportFilters())
        assert [row["created"] for row in rows] == [2, 1], (tz, change)
        # The same instants in UTC days fall differently: the zone really decides.
        utc_rows = report_throughput(
            window=window_make(first=change, last=change + timedelta(days=1)), filters=ReportFilters()
        )
        assert [row["created"] for row in utc_rows] != [2, 1] or tz == "UTC"


def test_a_weekly_bucket_across_a_change_is_one_hour_short():
    window = window_make(first=date(2026, 3, 23), last=date(2026, 3, 29), unit="week", tz="Europe/Berlin")
    (bucket,) = window.buckets
    assert bucket.end - bucket.start == timedelta(days=7, hours=-1)
