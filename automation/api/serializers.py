"""Input and output shapes of the automation API."""

from rest_framework import serializers

from ..models import Alert, Trigger, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class TriggerOutputSerializer(serializers.ModelSerializer):
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
            "created_at",
            "updated_at",
        )


class DryRunInputSerializer(serializers.Serializer):
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
        slug_field="username", read_only=True
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
    secret = serializers.CharField(read_only=True, help_text="whsec_…: shown this once, never again.")

    class Meta(WebhookEndpointOutputSerializer.Meta):
        fields = (*WebhookEndpointOutputSerializer.Meta.fields, "secret")
        read_only_fields = fields


class WebhookEndpointInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    url = serializers.CharField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=100
    )
    ordered = serializers.BooleanField(required=False)
    enabled = serializers.BooleanField(required=False)


class WebhookRotateInputSerializer(serializers.Serializer):
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


class WebhookDeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False, min_value=1)
