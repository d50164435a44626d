"""The report endpoints' query and answer shapes."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ..fold import AGE_BAND_NAMES
from ..selectors import BAND_FIELDS, MEASURED_STATES
from ..window import BUCKET_UNITS, MAX_WINDOW_DAYS, zone_names


class TimeZoneField(serializers.CharField):
    """An IANA zone name (the schema lists them)."""

    def openapi_enum(self) -> list[str]:
        return sorted(zone_names())


class ReportQuerySerializer(serializers.Serializer):
    locals()["from"] = serializers.DateField(help_text="First local day of the window (ISO date).")
    to = serializers.DateField(
        help_text=f"Last local day of the window, inclusive: on or after `from`, at most {MAX_WINDOW_DAYS} "
        "days after it. Weeks widen the window to whole ISO weeks (Monday to Sunday)."
    )
    bucket = serializers.ChoiceField(choices=list(BUCKET_UNITS), default="day")
    tz = TimeZoneField(
        default="UTC",
        max_length=64,
        help_text="IANA time zone of the buckets (DST-correct: a local day is midnight to midnight). Zones "
        "whose offset is not a whole number of hours are refused (TIME_ZONE_NOT_SUPPORTED).",
    )
    agency = serializers.UUIDField(required=False, help_text="Admins: one agency. Staff see only their own.")
    service_area = serializers.SlugField(required=False, max_length=64)
    task_type = serializers.SlugField(required=False, max_length=64)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["tz"] not in zone_names():
            raise serializers.ValidationError({"tz": ["Unknown time zone."]})
        return attrs


class _RowBase(serializers.Serializer):
    bucket_start = serializers.DateTimeField(help_text="Local start of the bucket, with its UTC offset.")
    bucket_end = serializers.DateTimeField(help_text="Local end of the bucket (exclusive).")


class ThroughputRowSerializer(_RowBase):
    created = serializers.IntegerField()
    completed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class AttainmentRowSerializer(_RowBase):
    met = serializers.IntegerField(help_text="Tasks completed in the bucket with no SLA breach.")
    breached = serializers.IntegerField(help_text="Tasks completed in the bucket after an SLA breach.")
    attainment = serializers.FloatField(allow_null=True, help_text="met / (met + breached); null if none.")


class TimeInStateRowSerializer(_RowBase):
    state = serializers.ChoiceField(choices=list(MEASURED_STATES))
    exits = serializers.IntegerField(help_text="Times tasks left the state in the bucket.")
    total_seconds = serializers.FloatField(help_text="Time those tasks had spent in the state.")
    mean_seconds = serializers.FloatField(allow_null=True)


BacklogRowSerializer = type(
    "BacklogRowSerializer",
    (_RowBase,),
    {
        "open_total": serializers.IntegerField(help_text="Open tasks just before the bucket's end."),
        **{
            BAND_FIELDS[band]: serializers.IntegerField(help_text=f"Of which aged {band}.")
            for band in AGE_BAND_NAMES
        },
    },
)


def report_serializer(name: str, row: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The answer of one report: its window, scope and rows."""
    fields = {
        "report": serializers.CharField(),
        "scope": serializers.ChoiceField(choices=["global", "agency"]),
        "agency_id": serializers.UUIDField(allow_null=True),
        "tz": serializers.CharField(),
        "bucket": serializers.ChoiceField(choices=list(BUCKET_UNITS)),
        "from": serializers.DateField(),
        "to": serializers.DateField(help_text="Last day, inclusive (widened to a Sunday for weeks)."),
        "rows": row(many=True),
    }
    return type(name, (serializers.Serializer,), fields)
