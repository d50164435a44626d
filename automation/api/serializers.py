"""Input and output shapes of the automation API."""

from typing import Any

from rest_framework import serializers

from outbox.events import event_types_registered
from polaris.api.query_params import PageQuerySerializer
from polaris.api.schema import NO_NUL_PATTERN
from polaris.api.strict import StrictFieldsMixin

from ..actions.registry import ACTION_TYPES, MAX_ACTIONS, Param
from ..models import Alert, Trigger
from ..rules import MAX_UNLESS, MAX_WAIT_MINUTES, NOT_FOR_TRIGGERS

# A string.Template the action fills from the event ($name, ${name}, $$ for a dollar; no other "$"),
# declared as a string format: a pattern for it needs literal braces, which schemathesis' rewriting of
# pattern-with-length breaks.
TEMPLATE_FORMAT = "action-template"


class PredicateField(serializers.CharField):
    """The predicate language (automation.predicates), which the schema names as a string format."""

    openapi_format = "trigger-predicate"


class EventTypeNameField(serializers.CharField):
    """The name of a registered event type (the services refuse others); the schema lists them."""

    def __init__(self, *, exclude: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(max_length=64, **kwargs)
        self.exclude = exclude

    def openapi_enum(self) -> list[str]:
        return [name for name in sorted(event_types_registered()) if name not in self.exclude]


def trigger_event_types() -> list[str]:
    """The event types a trigger may name (``event_type`` and ``unless``): one enum in the schema, named
    by ``SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]``."""
    return EventTypeNameField(exclude=NOT_FOR_TRIGGERS).openapi_enum()


def _param_schema(param: Param) -> dict[str, Any]:
    """JSON Schema of one action param, from its declaration (automation.actions.registry.Param)."""
    declared = dict(param.schema or {})
    if "oneOf" in declared:
        schema = declared
    else:
        kinds = param.kind if isinstance(param.kind, tuple) else (param.kind,)
        words = {str: "string", int: "integer", bool: "boolean"}
        schema = {"type": words[kinds[0]]} if len(kinds) == 1 else {}
        if param.choices is not None:
            schema["enum"] = list(param.choices)
        if param.max_length is not None:
            schema["maxLength"] = param.max_length
        if param.template:
            schema["format"] = TEMPLATE_FORMAT
        schema.update(declared)
        if schema.get("type") == "string" and not {"pattern", "enum", "format"} & set(schema):
            schema["pattern"] = NO_NUL_PATTERN
    if param.required:
        if schema.get("type") == "string":
            schema["minLength"] = 1
        return schema
    # An optional param given as null or "" counts as not given.
    return {"nullable": True, "anyOf": [schema, {"type": "string", "maxLength": 0}]}


def actions_schema() -> dict[str, Any]:
    """The ``actions`` list as ``automation.actions.registry.actions_validate`` accepts it."""
    variants = []
    for kind in ACTION_TYPES.values():
        params = {
            "type": "object",
            "additionalProperties": False,
            "properties": {param.name: _param_schema(param) for param in kind.params},
        }
        required = [param.name for param in kind.params if param.required]
        if required:
            params["required"] = required
        variants.append(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "params"] if required else ["type"],
                "properties": {"type": {"type": "string", "enum": [kind.name]}, "params": params},
            }
        )
    return {
        "type": "array",
        "maxItems": MAX_ACTIONS,
        "items": {"oneOf": variants},
        "description": 'What the trigger does: [{"type": ..., "params": {...}}], in order.',
    }


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class ActionsField(serializers.JSONField):
    """The trigger's actions (checked by the trigger rules); stored as jsonb, which cannot hold NUL."""

    openapi_schema = staticmethod(actions_schema)

    def to_internal_value(self, data: Any) -> Any:
        if _has_nul(data):
            raise serializers.ValidationError("Null characters are not allowed.")
        return super().to_internal_value(data)


class TriggerOutputSerializer(serializers.ModelSerializer):
    agency = serializers.UUIDField(source="agency_id", allow_null=True, read_only=True)
    wait_calendar = serializers.IntegerField(source="wait_calendar_id", allow_null=True, read_only=True)

    class Meta:
        model = Trigger
        fields = (
            "id",
            "name",
            "description",
            "event_type",
            "predicate",
            "actions",
            "position",
            "enabled",
            "agency",
            "wait_minutes",
            "wait_calendar",
            "unless",
            "version",
            "created_at",
            "updated_at",
        )


class TriggerListQuerySerializer(PageQuerySerializer):
    event_type = serializers.CharField(required=False, max_length=64)  # any: an unknown one lists nothing
    # default None: a query string without it is not "false" (DRF's checkbox rule for form data)
    enabled = serializers.BooleanField(required=False, allow_null=True, default=None)


class TriggerInputSerializer(StrictFieldsMixin, serializers.Serializer):
    """The shape of a trigger; what makes it valid (event type, predicate, actions) is the trigger rules'."""

    # Declared in the OpenAPI document (polaris.api.schema): a timed trigger only may have ``unless``.
    openapi_any_of = (
        {"not": {"required": ["unless"]}},
        {"properties": {"unless": {"maxItems": 0}}},
        {"required": ["wait_minutes"], "properties": {"wait_minutes": {"type": "integer"}}},
    )

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    event_type = EventTypeNameField(exclude=NOT_FOR_TRIGGERS)
    predicate = PredicateField(
        required=False,
        allow_blank=True,
        max_length=2000,
        trim_whitespace=False,
        help_text="An expression over the event (docs/automation.md); empty: every event of the type.",
    )
    actions = ActionsField(required=False)
    position = serializers.IntegerField(required=False, min_value=0, max_value=2_147_483_647)
    enabled = serializers.BooleanField(required=False)
    agency = serializers.UUIDField(required=False, allow_null=True, source="agency_id")
    wait_minutes = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_WAIT_MINUTES
    )
    wait_calendar = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2_147_483_647, source="wait_calendar_id"
    )
    unless = serializers.ListField(
        child=EventTypeNameField(exclude=NOT_FOR_TRIGGERS), required=False, max_length=MAX_UNLESS
    )


class BacktestInputSerializer(StrictFieldsMixin, serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField(
        required=False,
        help_text="Must be after since, and at most BACKTEST_MAX_DAYS (default 366) days after it. "
        "Left out: until now.",
    )

    def validate(self, attrs: dict) -> dict:
        if "until" in attrs and attrs["until"] <= attrs["since"]:
            raise serializers.ValidationError({"until": ["Must be after since."]})
        return attrs


class BacktestDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    matched = serializers.IntegerField()
    fired = serializers.IntegerField(required=False)
    cancelled = serializers.IntegerField(required=False)


class BacktestOutputSerializer(serializers.Serializer):
    trigger_id = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    timed = serializers.BooleanField()
    evaluated = serializers.IntegerField(help_text="Events of the trigger's type read in the window.")
    matched = serializers.IntegerField()
    fired = serializers.IntegerField(
        allow_null=True, help_text="Timed triggers: timers that would have fired."
    )
    cancelled = serializers.IntegerField(allow_null=True, help_text="Timed triggers: cancelled by unless.")
    evaluation_errors = serializers.IntegerField(help_text="Events whose evaluation failed.")
    days = BacktestDaySerializer(many=True)
    sample = serializers.ListField(child=serializers.DictField())
    truncated = serializers.BooleanField(help_text="A row, time or memory bound stopped the read early.")
    truncated_reason = serializers.ChoiceField(
        choices=["events", "time", "memory"],
        allow_null=True,
        help_text="Which bound stopped it: BACKTEST_MAX_EVENTS, BACKTEST_MAX_SECONDS or "
        "BACKTEST_MAX_MEMORY_MB; the counts cover what was read before.",
    )
    read_until = serializers.DateTimeField(allow_null=True, help_text="Where the read stopped, if truncated.")
    elapsed_ms = serializers.FloatField()


class EventBodyField(serializers.JSONField):
    """A dry-run's event body, declared as ``automation.dry_run`` reads it."""

    def openapi_schema(self) -> dict[str, Any]:
        uuid_string = {"type": "string", "format": "uuid"}
        return {
            "type": "object",
            "description": self.help_text,
            "required": ["event_type"],
            "properties": {
                "event_type": {"type": "string", "minLength": 1},
                "payload": {
                    "type": "object",
                    "properties": {"task_id": uuid_string, "action_plan_id": uuid_string},
                },
                "depth": {"type": "integer", "minimum": 0},
                "aggregate_id": uuid_string,
                "aggregate_type": {"type": "string", "maxLength": 32},
                "actor_role": {"type": "string", "maxLength": 32},
                "actor_id": {"type": "integer"},
                "correlation_id": {"type": "string", "maxLength": 64},
            },
            "additionalProperties": False,
        }


class DryRunInputSerializer(StrictFieldsMixin, serializers.Serializer):
    # Declared in the OpenAPI document (polaris.api.schema): exactly one of these two fields.
    openapi_exactly_one_of = ("event_id", "event")

    event_id = serializers.UUIDField(required=False, help_text="A stored event to test the trigger against.")
    event = EventBodyField(
        required=False,
        help_text="Or an event body: {event_type, payload, depth?, actor_role?, aggregate_id?}.",
    )

    def validate(self, attrs: dict) -> dict:
        if ("event_id" in attrs) == ("event" in attrs):
            raise serializers.ValidationError("Give exactly one of event_id or event.")
        if "event" in attrs and not isinstance(attrs["event"], dict):
            raise serializers.ValidationError({"event": ["Must be an object."]})
        return attrs


class DryRunClauseSerializer(serializers.Serializer):
    clause = serializers.CharField()
    result = serializers.BooleanField(allow_null=True)
    error = serializers.CharField(required=False)


class DryRunActionSerializer(serializers.Serializer):
    type = serializers.CharField()
    params = serializers.DictField()


class DryRunOutputSerializer(serializers.Serializer):
    trigger_id = serializers.IntegerField()
    trigger = serializers.CharField()
    enabled = serializers.BooleanField()
    event_id = serializers.UUIDField(allow_null=True)
    event_type = serializers.CharField()
    event_type_matches = serializers.BooleanField()
    agency_matches = serializers.BooleanField(
        help_text="False when the trigger is scoped to another agency than the event's (it would not run)."
    )
    matched = serializers.BooleanField()
    failed_clause = serializers.CharField(allow_null=True)
    clauses = DryRunClauseSerializer(many=True)
    error = serializers.CharField(allow_null=True)
    loop_prevented = serializers.BooleanField()
    actions = DryRunActionSerializer(many=True)


class AlertOutputSerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(allow_null=True, read_only=True)
    agency_id = serializers.UUIDField(allow_null=True, read_only=True)
    trigger_id = serializers.IntegerField(allow_null=True, read_only=True)
    acknowledged_by: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Null until acknowledged."
    )

    class Meta:
        model = Alert
        fields = (
            "id",
            "severity",
            "message",
            "agency_id",
            "event_id",
            "trigger_id",
            "created_at",
            "acknowledged_at",
            "acknowledged_by",
        )
