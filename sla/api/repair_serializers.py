"""Input and output shapes of the SLA repair API (``sla.api.repairs``)."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from polaris.api.strict import StrictFieldsMixin
from sla.calendar import WEEKDAYS
from sla.repair import MAX_PAGE, Proposal, RepairKind, RepairScope

MAX_PK = 2**63 - 1
CLOCK_PATTERN = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
CHANGE_KEYS = ("config", "calendar", "target_minutes", "hours", "holidays")
# Which keys make which change (besides "recompute": true, alone).
KINDS = {
    frozenset({"config", "target_minutes"}): RepairKind.CONFIG_TARGET,
    frozenset({"config", "calendar"}): RepairKind.CONFIG_CALENDAR,
    frozenset({"calendar", "hours"}): RepairKind.CALENDAR_HOURS,
    frozenset({"calendar", "holidays"}): RepairKind.CALENDAR_HOLIDAYS,
}
CHANGE_MESSAGE = (
    'Give one change — {"config", "target_minutes"}, {"config", "calendar"}, {"calendar", "hours"} or '
    '{"calendar", "holidays"} — or {"recompute": true}, not both.'
)

SCOPE_SCHEMA = {
    "oneOf": [
        {"type": "string", "enum": ["open"]},
        {
            "type": "object",
            "properties": {
                "closed_from": {"type": "string", "format": "date-time"},
                "closed_to": {"type": "string", "format": "date-time"},
            },
            "required": ["closed_from", "closed_to"],
            "additionalProperties": False,
        },
    ],
    "description": '"open" (the open records), or a window: the open records and those closed in '
    "[closed_from, closed_to), at most 366 days.",
}


@extend_schema_field(SCOPE_SCHEMA)
class RepairScopeField(serializers.Field):
    default_error_messages = {"invalid": 'Use "open" or {{"closed_from": …, "closed_to": …}}.'}

    def to_internal_value(self, data: Any) -> RepairScope:
        if data == "open":
            return RepairScope()
        if not isinstance(data, dict) or set(data) != {"closed_from", "closed_to"}:
            self.fail("invalid")
        parse = serializers.DateTimeField()
        try:
            return RepairScope(
                parse.run_validation(data["closed_from"]), parse.run_validation(data["closed_to"])
            )
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"closed_from/closed_to": exc.detail}) from None

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        "type": "object",
        "description": 'Local working hours per weekday: {"mon": [["09:00", "17:00"]], …, "sun": []}; each '
        "interval ends after it starts, a day's intervals do not overlap, and some day has working time.",
        "properties": {
            day: {
                "type": "array",
                "maxItems": 8,
                "items": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 2,
                    "items": {"type": "string", "minLength": 5, "maxLength": 5, "pattern": CLOCK_PATTERN},
                },
            }
            for day in WEEKDAYS
        },
        "additionalProperties": False,
    }
)
class WorkingHoursField(serializers.Field):
    default_error_messages = {"invalid": 'Weekday keys (mon … sun), each a list of ["HH:MM", "HH:MM"] pairs.'}

    def to_internal_value(self, data: Any) -> dict[str, list[list[str]]]:
        if not isinstance(data, dict) or set(data) - set(WEEKDAYS):
            self.fail("invalid")
        for intervals in data.values():
            if not isinstance(intervals, list) or len(intervals) > 8:
                self.fail("invalid")
            for pair in intervals:
                if not (
                    isinstance(pair, list)
                    and len(pair) == 2
                    and all(isinstance(v, str) and re.fullmatch(CLOCK_PATTERN, v) for v in pair)
                ):
                    self.fail("invalid")
        return {day: [list(pair) for pair in data.get(day, [])] for day in WEEKDAYS}

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {"type": "boolean", "enum": [True], "description": "Re-measure under the current policy."}
)
class RecomputeField(serializers.BooleanField):
    """``true`` only: ``recompute`` is a change of its own, not a switch."""

    default_error_messages = {"only_true": "Only true: leave it out otherwise."}

    def to_internal_value(self, data: Any) -> bool:
        if super().to_internal_value(data) is not True:
            self.fail("only_true")
        return True


class SLARepairInputSerializer(StrictFieldsMixin, serializers.Serializer):
    """One change or ``recompute``; a scope; ``dry_run`` (default true); the page of records to list."""

    config = serializers.IntegerField(
        required=False, help_text="The SLA config changed.", min_value=1, max_value=MAX_PK
    )
    calendar = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="With config: its new calendar (null: 24x7). With hours/holidays: the calendar changed.",
        min_value=1,
        max_value=MAX_PK,
    )
    target_minutes = serializers.IntegerField(required=False, min_value=1, max_value=10_000_000)
    hours = WorkingHoursField(required=False)
    holidays = serializers.ListField(
        child=serializers.DateField(),
        required=False,
        max_length=1000,
        help_text="The calendar's new holidays.",
    )
    recompute = RecomputeField(required=False)
    scope = RepairScopeField(required=False)
    dry_run = serializers.BooleanField(required=False, default=True)
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=MAX_PAGE)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=1_000_000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = frozenset(key for key in CHANGE_KEYS if key in attrs)
        recompute = RepairKind.RECOMPUTE if not given else None
        kind = recompute if attrs.get("recompute") else KINDS.get(given)
        if kind is None or (
            attrs.get("calendar") is None and kind != RepairKind.CONFIG_CALENDAR and "calendar" in given
        ):
            raise serializers.ValidationError({"non_field_errors": [CHANGE_MESSAGE]})
        holidays = attrs.get("holidays")
        attrs["proposal"] = Proposal(
            kind=kind,
            config=attrs.get("config"),
            calendar=attrs.get("calendar"),
            target_minutes=attrs.get("target_minutes"),
            hours=attrs.get("hours"),
            holidays=None if holidays is None else sorted({day.isoformat() for day in holidays}),
        )
        attrs["repair_scope"] = attrs.get("scope") or RepairScope()
        return attrs


class _RepairShape(StrictFieldsMixin, serializers.Serializer):
    """What every repair body may carry besides its change (the shapes below are for the schema: one
    ``oneOf`` branch per change; ``SLARepairInputSerializer`` validates)."""

    scope = RepairScopeField(required=False)
    dry_run = serializers.BooleanField(required=False, default=True, help_text="Default true: preview only.")
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=MAX_PAGE)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=1_000_000)


class RepairConfigTargetShape(_RepairShape):
    config = serializers.IntegerField(min_value=1, max_value=MAX_PK, help_text="The SLA config changed.")
    target_minutes = serializers.IntegerField(min_value=1, max_value=10_000_000)


class RepairConfigCalendarShape(_RepairShape):
    config = serializers.IntegerField(min_value=1, max_value=MAX_PK, help_text="The SLA config changed.")
    calendar = serializers.IntegerField(
        min_value=1, max_value=MAX_PK, allow_null=True, help_text="Its new calendar (null: 24x7)."
    )


class RepairCalendarHoursShape(_RepairShape):
    calendar = serializers.IntegerField(min_value=1, max_value=MAX_PK, help_text="The calendar changed.")
    hours = WorkingHoursField()


class RepairCalendarHolidaysShape(_RepairShape):
    calendar = serializers.IntegerField(min_value=1, max_value=MAX_PK, help_text="The calendar changed.")
    holidays = serializers.ListField(child=serializers.DateField(), max_length=1000)


class RepairRecomputeShape(_RepairShape):
    recompute = RecomputeField()


SLA_REPAIR_REQUEST = PolymorphicProxySerializer(
    component_name="SLARepairRequest",
    serializers=[
        RepairConfigTargetShape,
        RepairConfigCalendarShape,
        RepairCalendarHoursShape,
        RepairCalendarHolidaysShape,
        RepairRecomputeShape,
    ],
    resource_type_field_name=None,
)


class RepairTotalsSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Records in scope.")
    changed = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    newly_breached = serializers.IntegerField()
    no_longer_breached = serializers.IntegerField()


class RepairRecordSerializer(serializers.Serializer):
    sla_record = serializers.UUIDField()
    task = serializers.UUIDField()
    old_due_at = serializers.DateTimeField()
    new_due_at = serializers.DateTimeField()
    old_breached = serializers.BooleanField()
    new_breached = serializers.BooleanField()
    old_target_minutes = serializers.IntegerField()
    new_target_minutes = serializers.IntegerField()


class RepairPreviewSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    as_of = serializers.DateTimeField(help_text="The instant breaches are judged at.")
    change = serializers.DictField(child=serializers.JSONField())
    scope = serializers.DictField(child=serializers.JSONField())
    totals = RepairTotalsSerializer()
    records = RepairRecordSerializer(many=True, help_text="The changed records, in due order: one page.")
    records_total = serializers.IntegerField(help_text="How many changed records there are in all.")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()


class SLARepairSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.CharField(help_text="pending, running, done or failed.")
    change = serializers.DictField(child=serializers.JSONField())
    scope = serializers.DictField(child=serializers.JSONField())
    as_of = serializers.DateTimeField()
    requested_by = serializers.IntegerField(source="requested_by_id", allow_null=True)
    total = serializers.IntegerField()
    processed = serializers.IntegerField()
    changed = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    newly_breached = serializers.IntegerField()
    no_longer_breached = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class SLAMeasurementSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    current = serializers.BooleanField()
    repair = serializers.UUIDField(allow_null=True)
    target_minutes = serializers.IntegerField()
    calendar = serializers.DictField(child=serializers.JSONField(), allow_null=True)
    due_at = serializers.DateTimeField()
    status = serializers.CharField()
    breached_at = serializers.DateTimeField(allow_null=True)
    recorded_at = serializers.DateTimeField()


class SLAHistorySerializer(serializers.Serializer):
    task = serializers.UUIDField()
    sla_record = serializers.UUIDField()
    measurement = serializers.IntegerField(help_text="The current measurement's number.")
    versions = SLAMeasurementSerializer(many=True, help_text="Every measurement, oldest first.")
