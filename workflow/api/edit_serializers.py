"""Input shapes of the edit endpoints: task PATCH and assign, plan PATCH, and the bulk request.

Strict (``polaris.api.strict.StrictFieldsMixin``): an unknown key, or a field of the representation that
cannot be written here (``state``, ``client``, …), is a 400 naming it. Which role may change which field is
the services' rule (``workflow.services.tasks``), not the shapes'.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from polaris.api.strict import StrictFieldsMixin
from workflow.api.filters import TaskFilterObjectSerializer
from workflow.api.plan_serializers import PLAN_READ_ONLY_NAMES, ApprovalPolicySerializer
from workflow.api.serializers import (
    TASK_READ_ONLY_NAMES,
    ScopedActionPlanField,
    ScopedUserField,
    slug_field,
)
from workflow.models import TaskPriority, TaskState
from workflow.validation import TITLE_MAX_LENGTH

BULK_MAX_ITEMS = 500
BULK_ACTIONS = ("transition", "assign", "update")


class TaskUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    class Meta:
        read_only_names = (*TASK_READ_ONLY_NAMES, "client", "agency")

    title = serializers.CharField(max_length=TITLE_MAX_LENGTH, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    priority = serializers.ChoiceField(choices=TaskPriority.choices, required=False)
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    assignee = ScopedUserField(required=False, allow_null=True, help_text="An agent of the task's agency.")
    action_plan = ScopedActionPlanField(
        required=False, allow_null=True, help_text="A draft or active plan of the same client and agency."
    )
    service_area = slug_field(
        example="housing", required=False, allow_blank=True, help_text="Only while the task is new."
    )
    task_type = slug_field(example="home-visit", required=False, help_text="Only while the task is new.")
    staff_notes = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=10000,
        help_text="Notes for staff only (admins and the task's agency); never shown to clients (403).",
    )


class TaskAssignSerializer(StrictFieldsMixin, serializers.Serializer):
    assignee = ScopedUserField(
        allow_null=True, help_text="User id of an agent of the task's agency, or null."
    )


class ApprovalPolicyInputSerializer(StrictFieldsMixin, ApprovalPolicySerializer):
    """An approval policy in a write body (strict: unknown keys are a 400)."""

    openapi_exactly_one_of = ("approvers", "role")


class ActionPlanUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    class Meta:
        read_only_names = (*PLAN_READ_ONLY_NAMES, "client", "agency")

    title = serializers.CharField(max_length=TITLE_MAX_LENGTH, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    approval_policy = ApprovalPolicyInputSerializer(
        required=False,
        allow_null=True,
        help_text=(
            "Approvals activation will need (null: none). Draft plans only; changing or removing an "
            "existing policy is for admins and the agency's supervisors. Starts a new round; audited."
        ),
    )


class BulkTransitionParamsSerializer(StrictFieldsMixin, serializers.Serializer):
    target_state = serializers.ChoiceField(choices=TaskState.choices)
    reason = serializers.CharField(required=False, default="", allow_blank=True, max_length=2000)
    internal = serializers.BooleanField(
        required=False, default=False, help_text="The reason is for staff only (clients never see it)."
    )


class TaskBulkSerializer(StrictFieldsMixin, serializers.Serializer):
    action = serializers.ChoiceField(choices=BULK_ACTIONS)
    ids = serializers.ListField(
        child=serializers.UUIDField(), required=False, allow_empty=False, help_text="At most 500 task ids."
    )
    filter = serializers.DictField(
        required=False, help_text='The list endpoint\'s filters, e.g. {"state": "new", "assignee": 7}.'
    )
    params = serializers.DictField(
        required=False,
        default=dict,
        help_text="transition: {target_state, reason}; assign: {assignee}; update: the PATCH fields.",
    )
    dry_run = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("ids" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError({"ids": ["Give either ids or filter (exactly one)."]})
        return attrs


# --- The bulk request as the OpenAPI document declares it: one shape per action -------------------
# (TaskBulkSerializer above reads the body; these say what it accepts, action by action, so a client or
# a fuzzer knows that a transition needs params.target_state, an assignment params.assignee, and so on.)


class TaskBulkFilterSerializer(TaskFilterObjectSerializer):
    """``filter``: the list endpoint's filters as a JSON object (values of their JSON types); not its
    ``page``, ``page_size`` or ``ordering``."""

    not_filters = ("page", "page_size", "ordering")


class _TaskBulkShape(StrictFieldsMixin, serializers.Serializer):
    openapi_exactly_one_of = ("ids", "filter")

    ids = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        allow_empty=False,
        min_length=1,
        max_length=BULK_MAX_ITEMS,
        help_text=f"At most {BULK_MAX_ITEMS} task ids (a repeated id counts once).",
    )
    filter = TaskBulkFilterSerializer(required=False)
    dry_run = serializers.BooleanField(required=False, default=False)


class TaskBulkTransitionShape(_TaskBulkShape):
    action = serializers.ChoiceField(choices=["transition"])
    params = BulkTransitionParamsSerializer()


class TaskBulkAssignShape(_TaskBulkShape):
    action = serializers.ChoiceField(choices=["assign"])
    params = TaskAssignSerializer()


class TaskBulkUpdateShape(_TaskBulkShape):
    action = serializers.ChoiceField(choices=["update"])
    params = TaskUpdateSerializer(required=False)


TASK_BULK_REQUEST = PolymorphicProxySerializer(
    component_name="TaskBulkRequest",
    serializers={
        "transition": TaskBulkTransitionShape,
        "assign": TaskBulkAssignShape,
        "update": TaskBulkUpdateShape,
    },
    resource_type_field_name="action",
)


class BulkItemResultSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=("succeeded", "failed"))
    error_code = serializers.CharField(required=False)
    message = serializers.CharField(required=False)


class BulkCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()


class TaskBulkResultSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    action = serializers.CharField()
    dry_run = serializers.BooleanField()
    counts = BulkCountsSerializer()
    results = BulkItemResultSerializer(many=True)
