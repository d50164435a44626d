"""A report's window and buckets in a time zone: local days (midnight to midnight, 23 or 25 hours across a
DST change) or ISO weeks (Monday to Monday), as UTC instants the hourly rollups can be summed between.

The rollups are per UTC hour, so a bucket boundary must fall on a UTC hour: true of every zone whose offset
is a whole number of hours at each boundary. Zones with 30/45-minute offsets (Asia/Kolkata, Asia/Kathmandu,
Australia/Adelaide…) are refused with ``TIME_ZONE_NOT_SUPPORTED`` rather than answered approximately.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from polaris.errors import ValidationFailed

MAX_WINDOW_DAYS = 366
EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)
BUCKET_UNITS = ("day", "week")


class InvalidTimeZone(ValidationFailed):
    error_code = "INVALID_TIME_ZONE"
    default_message = "Unknown time zone: give an IANA name such as Europe/Berlin."


class TimeZoneNotSupported(ValidationFailed):
    error_code = "TIME_ZONE_NOT_SUPPORTED"
    default_message = (
        "Reports are kept per UTC hour; this zone's offset is not a whole number of hours in the window."
    )


class InvalidWindow(ValidationFailed):
    error_code = "INVALID_WINDOW"
    default_message = "A report runs from `from` to `to` (on or after it): 366 days at most, 1970-2999."


@functools.cache
def zone_names() -> frozenset[str]:
    """The IANA names the zone database lists (never a path)."""
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def zone_get(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name`` (only names the zone database lists: never a path)."""
    if name not in zone_names():
        raise InvalidTimeZone(details={"tz": [f"Unknown time zone {name[:64]!r}."]})
    return zoneinfo.ZoneInfo(name)


def local_midnight(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``, in UTC (a midnight skipped by DST: the transition)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Bucket:
    day: date  # the local date the bucket starts on
    start: datetime  # UTC
    end: datetime  # UTC

    def local_start(self, zone: zoneinfo.ZoneInfo) -> str:
        return self.start.astimezone(zone).isoformat()

    def local_end(self, zone: zoneinfo.ZoneInfo) -> str:
        return self.end.astimezone(zone).isoformat()


@dataclass(frozen=True)
class Window:
    zone: zoneinfo.ZoneInfo
    unit: str
    first: date
    last: date  # inclusive
    buckets: tuple[Bucket, ...]

    @property
    def start(self) -> datetime:
        return self.buckets[0].start

    @property
    def end(self) -> datetime:
        return self.buckets[-1].end

    @property
    def tz_name(self) -> str:
        return self.zone.key


def window_make(*, first: date, last: date, unit: str = "day", tz: str = "UTC") -> Window:
    """Validate and expand a report window; weeks widen it to whole ISO weeks (Monday to Sunday)."""
    if unit not in BUCKET_UNITS:
        raise InvalidWindow(details={"bucket": ["One of day, week."]})
    zone = zone_get(tz)
    if not (EARLIEST <= first <= LATEST and EARLIEST <= last <= LATEST):
        raise InvalidWindow(details={"from": [f"Dates between {EARLIEST} and {LATEST}."]})
    if last < first:
        raise InvalidWindow("`to` is before `from`.", details={"to": ["Must be on or after `from`."]})
    if (last - first).days + 1 > MAX_WINDOW_DAYS:
        raise InvalidWindow(
            f"At most {MAX_WINDOW_DAYS} days per report.",
            details={"to": [f"At most {MAX_WINDOW_DAYS} days after `from`."]},
        )
    step = 1
    if unit == "week":
        first -= timedelta(days=first.weekday())
        last += timedelta(days=6 - last.weekday())
        step = 7
    days = [first + timedelta(days=offset) for offset in range(0, (last - first).days + 2, step)]
    instants = [local_midnight(day, zone) for day in days]
    if any(instant.minute or instant.second for instant in instants):
        raise TimeZoneNotSupported(details={"tz": [TimeZoneNotSupported.default_message]})
    buckets = tuple(Bucket(days[i], instants[i], instants[i + 1]) for i in range(len(days) - 1))
    return Window(zone=zone, unit=unit, first=first, last=last, buckets=buckets)
