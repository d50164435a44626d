"""API representations of action plans: input serializers validate shape, output serializers render.

References in request bodies resolve only within what the caller may see (``workflow.api.serializers``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from polaris.accounts.models import Agency
from polaris.api.strict import StrictFieldsMixin
from workflow import selectors
from workflow.api.serializers import (
    MAX_BIGINT,
    AgencyField,
    EventSerializer,
    ScopedUserField,
    _caller,
    _ListQuerySerializer,
    default_agency,
)
from workflow.models import ActionPlan, ActionPlanState, Task, TaskState
from workflow.validation import TITLE_MAX_LENGTH


class ActionPlanSerializer(serializers.ModelSerializer):
    available_transitions = serializers.SerializerMethodField(
        help_text="Target states the caller may move this plan to now (guards and permissions applied)."
    )

    class Meta:
        model = ActionPlan
        fields = (
            "id",
            "title",
            "description",
            "state",
            "version",
            "client",
            "agency",
            "created_by",
            "created_at",
            "updated_at",
            "available_transitions",
        )
        read_only_fields = fields

    @extend_schema_field(
        serializers.ListField(child=serializers.ChoiceField(choices=ActionPlanState.choices))
    )
    def get_available_transitions(self, plan: ActionPlan) -> list[str]:
        return selectors.available_targets(instance=plan, user=_caller(self))


class TaskSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = ("id", "title", "task_type", "priority", "state", "assignee", "due_at", "waiting_on")
        read_only_fields = fields


class ActionPlanDetailSerializer(ActionPlanSerializer):
    tasks = serializers.SerializerMethodField()
    task_counts = serializers.SerializerMethodField(help_text="Number of the plan's tasks in each state.")

    class Meta(ActionPlanSerializer.Meta):
        fields: tuple[str, ...] = (*ActionPlanSerializer.Meta.fields, "task_counts", "tasks")  # type: ignore[assignment]
        read_only_fields = fields  # type: ignore[assignment]

    @extend_schema_field(TaskSummarySerializer(many=True))
    def get_tasks(self, plan: ActionPlan) -> Any:
        tasks = sorted(plan.tasks.all(), key=lambda task: (task.created_at, str(task.pk)))
        return TaskSummarySerializer(tasks, many=True).data

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "integer"}, "example": {"new": 2, "completed": 1}}
    )
    def get_task_counts(self, plan: ActionPlan) -> dict[str, int]:
        counts = dict.fromkeys(TaskState.values, 0)
        for task in plan.tasks.all():
            counts[task.state] += 1
        return counts


PLAN_READ_ONLY_NAMES = (
    "id",
    "state",
    "version",
    "created_by",
    "created_at",
    "updated_at",
    "available_transitions",
    "task_counts",
    "tasks",
)


class ActionPlanCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    class Meta:
        read_only_names = PLAN_READ_ONLY_NAMES

    title = serializers.CharField(
        max_length=TITLE_MAX_LENGTH,
        required=False,
        help_text="Required unless the plan is made from a template (then: the template's name).",
    )
    description = serializers.CharField(required=False, default="", allow_blank=True, max_length=10000)
    client = ScopedUserField(help_text="Client user id.")
    template = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_BIGINT,
        help_text="A plan template's id: the plan is made with every task of its latest version, in one "
        "transaction (tasks that wait for others stay new with waiting_on).",
    )
    agency = AgencyField(
        queryset=Agency.objects.all(),
        required=False,
        help_text="Agency id; defaults to the caller's agency (or the client's); required for admins.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "title" not in attrs and "template" not in attrs:
            raise serializers.ValidationError({"title": ["This field is required."]})
        if "agency" not in attrs:
            attrs["agency"] = default_agency(user=_caller(self), client=attrs["client"])
        return attrs


class ActionPlanTransitionResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    action_plan = ActionPlanDetailSerializer()
    event = EventSerializer()


class ActionPlanTransitionSerializer(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)


class ActionPlanListQuerySerializer(_ListQuerySerializer):
    state = serializers.ChoiceField(choices=ActionPlanState.choices, required=False)
    client = serializers.IntegerField(required=False, min_value=1, max_value=MAX_BIGINT)
    agency = serializers.UUIDField(required=False)
