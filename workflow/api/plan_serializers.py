"""API representations of action plans: input serializers validate shape, output serializers render.

References in request bodies resolve only within what the caller may see (``workflow.api.serializers``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from polaris.access import is_client
from polaris.accounts.models import Agency
from polaris.api.schema import DistinctListField
from polaris.api.strict import StrictFieldsMixin
from workflow import selectors
from workflow.api.serializers import (
    MAX_BIGINT,
    AgencyField,
    EventSerializer,
    ScopedUserField,
    _caller,
    _datetime_or_none,
    _ListQuerySerializer,
    default_agency,
)
from workflow.models import ActionPlan, ActionPlanState, ApprovalDecision, Task, TaskState
from workflow.services.approvals import APPROVAL_MAX_COUNT, APPROVER_ROLES, APPROVERS_MAX
from workflow.validation import TITLE_MAX_LENGTH


class ApprovalPolicySerializer(serializers.Serializer):
    """``{"count": N, "approvers": [user ids]}`` or ``{"count": N, "role": "supervisor|agency|admin"}``."""

    count = serializers.IntegerField(
        min_value=1,
        max_value=APPROVAL_MAX_COUNT,
        help_text="Approvals needed; at most the number of approvers.",
    )
    approvers = DistinctListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_BIGINT),
        min_length=1,
        max_length=APPROVERS_MAX,
        required=False,
        help_text="User ids (admins or staff of the plan's agency); or name a role instead.",
    )
    role = serializers.ChoiceField(
        choices=APPROVER_ROLES,
        required=False,
        help_text="supervisor: the agency's supervisors; agency: any of its staff; admin: admins.",
    )


class ApprovalVoteSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    round = serializers.IntegerField(read_only=True)
    approver = serializers.IntegerField(read_only=True)
    decision = serializers.ChoiceField(choices=ApprovalDecision.choices, read_only=True)
    comment = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class ApprovalStatusSerializer(serializers.Serializer):
    policy = ApprovalPolicySerializer(read_only=True)
    round = serializers.IntegerField(
        read_only=True, help_text="A rejection or a policy change starts a new round."
    )
    required = serializers.IntegerField(read_only=True)  # type: ignore[assignment]  # named "required"
    approvals = serializers.IntegerField(read_only=True, help_text="Approvals in the current round.")
    still_needed = serializers.IntegerField(read_only=True)
    approved = serializers.BooleanField(read_only=True)
    pending_approvers = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        allow_null=True,
        help_text="Listed approvers who have not voted this round (null for a role policy).",
    )
    votes = ApprovalVoteSerializer(
        many=True, read_only=True, required=False, help_text="Staff only: this round's votes."
    )
    last_rejection = ApprovalVoteSerializer(
        read_only=True,
        allow_null=True,
        required=False,
        help_text="Staff only: the latest rejection and its comment.",
    )


# The plan representations are ModelSerializers (their fields are the schema) that render their dicts
# directly: a ModelSerializer builds its fields from the model's metadata on every use, which cost a plan
# made from a template (with its 20 task summaries) about two milliseconds of CPU.
# tests/workflow/api/test_representation_parity.py pins the output to what the fields would render.


class ActionPlanSerializer(serializers.ModelSerializer):
    approval_policy = ApprovalPolicySerializer(
        read_only=True, allow_null=True, help_text="Approvals activation needs; null: none."
    )
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
            "approval_policy",
            "available_transitions",
        )
        read_only_fields = fields

    @extend_schema_field(
        serializers.ListField(child=serializers.ChoiceField(choices=ActionPlanState.choices))
    )
    def get_available_transitions(self, plan: ActionPlan) -> list[str]:
        return selectors.available_targets(instance=plan, user=_caller(self))

    def to_representation(self, instance: ActionPlan) -> dict[str, Any]:
        policy = instance.approval_policy
        return {
            "id": str(instance.pk),
            "title": instance.title,
            "description": instance.description,
            "state": instance.state,
            "version": instance.version,
            "client": instance.client_id,
            "agency": instance.agency_id,
            "created_by": instance.created_by_id,
            "created_at": _datetime_or_none(instance.created_at),
            "updated_at": _datetime_or_none(instance.updated_at),
            "approval_policy": None if policy is None else ApprovalPolicySerializer(policy).data,
            "available_transitions": self.get_available_transitions(instance),
        }


class TaskSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Task
        fields = ("id", "title", "task_type", "priority", "state", "assignee", "due_at", "waiting_on")
        read_only_fields = fields

    def to_representation(self, instance: Task) -> dict[str, Any]:
        return task_summary(instance)


def task_summary(task: Task) -> dict[str, Any]:
    """A task as a plan's detail lists it (``TaskSummarySerializer``'s fields)."""
    return {
        "id": str(task.pk),
        "title": task.title,
        "task_type": task.task_type,
        "priority": task.priority,
        "state": task.state,
        "assignee": task.assignee_id,
        "due_at": _datetime_or_none(task.due_at),
        "waiting_on": [str(pk) for pk in task.waiting_on],
    }


class ActionPlanDetailSerializer(ActionPlanSerializer):
    tasks = serializers.SerializerMethodField()
    task_counts = serializers.SerializerMethodField(help_text="Number of the plan's tasks in each state.")
    approval = serializers.SerializerMethodField(
        help_text="Where the plan's approval stands (null without a policy); votes and comments staff only."
    )

    class Meta(ActionPlanSerializer.Meta):
        fields: tuple[str, ...] = (*ActionPlanSerializer.Meta.fields, "approval", "task_counts", "tasks")  # type: ignore[assignment]
        read_only_fields = fields  # type: ignore[assignment]

    @extend_schema_field(ApprovalStatusSerializer(allow_null=True))
    def get_approval(self, plan: ActionPlan) -> Any:
        status = selectors.approval_status(plan, staff=not is_client(_caller(self)))
        if status is None:
            return None
        # Staff-only keys absent from a client's status stay absent (DRF would render them as null).
        return {key: value for key, value in ApprovalStatusSerializer(status).data.items() if key in status}

    @extend_schema_field(TaskSummarySerializer(many=True))
    def get_tasks(self, plan: ActionPlan) -> Any:
        tasks = sorted(plan.tasks.all(), key=lambda task: (task.created_at, str(task.pk)))
        return [task_summary(task) for task in tasks]

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "integer"}, "example": {"new": 2, "completed": 1}}
    )
    def get_task_counts(self, plan: ActionPlan) -> dict[str, int]:
        counts = dict.fromkeys(TaskState.values, 0)
        for task in plan.tasks.all():
            counts[task.state] += 1
        return counts

    def to_representation(self, instance: ActionPlan) -> dict[str, Any]:
        return {
            **super().to_representation(instance),
            "approval": self.get_approval(instance),
            "task_counts": self.get_task_counts(instance),
            "tasks": self.get_tasks(instance),
        }


PLAN_READ_ONLY_NAMES = (
    "id",
    "state",
    "version",
    "created_by",
    "created_at",
    "updated_at",
    "available_transitions",
    "approval",
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
