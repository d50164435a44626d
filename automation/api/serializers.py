"""Input and output shapes of the automation API."""

from rest_framework import serializers

from polaris.api.query_params import PageQuerySerializer
from polaris.api.strict import StrictFieldsMixin

from ..models import Alert, Trigger, WebhookAttempt, WebhookDelivery, WebhookEndpoint


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
    event_type = serializers.CharField(required=False, max_length=64)
    # default None: a query string without it is not "false" (DRF's checkbox rule for form data)
    enabled = serializers.BooleanField(required=False, allow_null=True, default=None)


class TriggerInputSerializer(StrictFieldsMixin, serializers.Serializer):
    """The shape of a trigger; what makes it valid (event type, predicate, actions) is the trigger rules'."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    event_type = serializers.CharField(max_length=64)
    predicate = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, trim_whitespace=False
    )
    actions = serializers.JSONField(required=False, help_text='A list of {"type": ..., "params": {...}}.')
    position = serializers.IntegerField(required=False, min_value=0, max_value=2_147_483_647)
    enabled = serializers.BooleanField(required=False)
    agency = serializers.UUIDField(required=False, allow_null=True, source="agency_id")
    wait_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    wait_calendar = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2_147_483_647, source="wait_calendar_id"
    )
    unless = serializers.ListField(child=serializers.CharField(max_length=64), required=False)


class BacktestInputSerializer(StrictFieldsMixin, serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()

    def validate(self, attrs: dict) -> dict:
        if attrs["until"] <= attrs["since"]:
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
    truncated = serializers.BooleanField(help_text="A row or time bound stopped the read early.")
    read_until = serializers.DateTimeField(allow_null=True, help_text="Where the read stopped, if truncated.")
    elapsed_ms = serializers.FloatField()


class DryRunInputSerializer(serializers.Serializer):
    # Declared in the OpenAPI document (polaris.api.schema): exactly one of these two fields.
    openapi_exactly_one_of = ("event_id", "event")

    event_id = serializers.UUIDField(required=False, help_text="A stored event to test the trigger against.")
    event = serializers.JSONField(
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


class WebhookEndpointOutputSerializer(serializers.ModelSerializer):
    """An endpoint as the API shows it: never its secret (shown once, on creation and rotation)."""

    class Meta:
        model = WebhookEndpoint
        fields: tuple[str, ...] = (
            "id",
            "name",
            "url",
            "event_types",
            "ordered",
            "enabled",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "previous_secret_until",
            "created_at",
            "updated_at",
        )
        read_only_fields: tuple[str, ...] = fields


class WebhookEndpointSecretSerializer(WebhookEndpointOutputSerializer):
    secret = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="whsec_…: shown this once, never again (null in an Idempotency-Key replay).",
    )
    secret_withheld = serializers.BooleanField(
        read_only=True,
        help_text="True in an Idempotency-Key replay: the secret was shown in the first response only.",
    )

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = (*WebhookEndpointOutputSerializer.Meta.fields, "secret", "secret_withheld")
        read_only_fields = fields


class WebhookEndpointInputSerializer(StrictFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=200)
    url = serializers.CharField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=100
    )
    ordered = serializers.BooleanField(required=False)
    enabled = serializers.BooleanField(required=False)


class WebhookRotateInputSerializer(StrictFieldsMixin, serializers.Serializer):
    grace_seconds = serializers.FloatField(
        required=False, min_value=0, max_value=30 * 86400, help_text="How long the old secret signs too."
    )


class WebhookPingOutputSerializer(serializers.Serializer):
    delivered = serializers.BooleanField()
    response_status = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.FloatField()
    response_excerpt = serializers.CharField()
    error = serializers.CharField()
    webhook_id = serializers.CharField()


class WebhookAttemptOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = (
            "number",
            "started_at",
            "outcome",
            "response_status",
            "duration_ms",
            "response_excerpt",
            "error",
        )
        read_only_fields = fields


class WebhookDeliveryOutputSerializer(serializers.ModelSerializer):
    endpoint_id = serializers.IntegerField(read_only=True)
    event_id = serializers.UUIDField(read_only=True)
    attempt_log = WebhookAttemptOutputSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = (
            "id",
            "endpoint_id",
            "event_id",
            "aggregate_type",
            "aggregate_id",
            "sequence",
            "status",
            "attempts",
            "next_attempt_at",
            "response_status",
            "last_error",
            "created_at",
            "delivered_at",
            "attempt_log",
        )
        read_only_fields = fields


class WebhookDeliveryFilterSerializer(PageQuerySerializer):
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)
