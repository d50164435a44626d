"""Input and output shapes of the SLA config API."""

from rest_framework import serializers

from polaris.api.schema import DistinctListField
from polaris.api.strict import StrictFieldsMixin
from sla.models import PAUSABLE_STATES, BusinessCalendar, SLAConfig
from workflow.models import TaskState


class SLAConfigOutputSerializer(serializers.ModelSerializer):
    calendar_name = serializers.CharField(
        source="calendar.name", default=None, read_only=True, allow_null=True
    )

    class Meta:
        model = SLAConfig
        fields = (
            "id",
            "name",
            "service_area",
            "task_type",
            "target_minutes",
            "warning_percentages",
            "pause_states",
            "calendar",
            "calendar_name",
            "active",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class SLAConfigInputSerializer(StrictFieldsMixin, serializers.Serializer):
    """Create (all required fields) or PATCH (``partial=True``: only the fields sent change).

    Strict: an unknown key, or a read-only field of the representation, is a 400 naming it."""

    class Meta:
        read_only_names = ("id", "calendar_name", "created_at", "updated_at")

    name = serializers.CharField(max_length=100)
    service_area = serializers.SlugField(max_length=64, allow_blank=True, required=False)
    task_type = serializers.SlugField(max_length=64, allow_blank=True, required=False)
    target_minutes = serializers.IntegerField(min_value=1, max_value=10_000_000)
    warning_percentages = DistinctListField(
        child=serializers.IntegerField(min_value=1, max_value=99), required=False, max_length=20
    )
    pause_states = serializers.ListField(
        child=serializers.ChoiceField(
            choices=[(s.value, s.label) for s in TaskState if s in PAUSABLE_STATES]
        ),
        required=False,
        max_length=len(PAUSABLE_STATES),
    )
    calendar = serializers.PrimaryKeyRelatedField(
        queryset=BusinessCalendar.objects.all(), allow_null=True, required=False
    )
    active = serializers.BooleanField(required=False)
