"""Input and output shapes of the automation API."""

from rest_framework import serializers

from ..models import Alert, Trigger


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
