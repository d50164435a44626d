"""Input and output shapes of the plan-template API (the blueprint rules: ``careplans.blueprints``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from polaris.api.query_params import PageQuerySerializer
from polaris.api.strict import StrictFieldsMixin
from workflow.services.approvals import APPROVAL_MAX_COUNT, APPROVER_ROLES, APPROVERS_MAX
from workflow.states import ActionPlanState, TaskPriority

from ..blueprints import (
    MAX_BLUEPRINTS,
    MAX_CHECKLIST_ITEMS,
    MAX_CHECKLIST_TEXT,
    MAX_DEPENDS_ON,
    MAX_DESCRIPTION,
    MAX_DUE_IN_BUSINESS_HOURS,
    OnPredecessorCancelled,
)
from ..models import PlanMigrationState
from ..services.templates import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH

MAX_BIGINT = 2**63 - 1
MAX_PLAN_IDS = 10_000


class BlueprintChecklistItemSerializer(StrictFieldsMixin, serializers.Serializer):
    text = serializers.CharField(min_length=1, max_length=MAX_CHECKLIST_TEXT)
    # The metaclass takes declared fields off the class, so this does not shadow ``Field.required``.
    required = serializers.BooleanField(required=False, default=False)  # type: ignore[assignment]


class BlueprintSerializer(StrictFieldsMixin, serializers.Serializer):
    """One task of the template."""

    key = serializers.SlugField(max_length=64, help_text="Unique in the template; depends_on names it.")
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(
        max_length=MAX_DESCRIPTION, required=False, default="", allow_blank=True
    )
    task_type = serializers.SlugField(max_length=64)
    service_area = serializers.SlugField(max_length=64, required=False, default="", allow_blank=True)
    priority = serializers.ChoiceField(choices=TaskPriority.choices, required=False, default="normal")
    due_in_business_hours = serializers.FloatField(
        required=False,
        allow_null=True,
        default=None,
        min_value=0.01,
        max_value=MAX_DUE_IN_BUSINESS_HOURS,
        help_text="Business hours from the moment the task becomes ready, on the calendar of the SLA config "
        "that applies to the task (24x7 without one); null: no due date.",
    )
    depends_on = serializers.ListField(
        child=serializers.SlugField(max_length=64),
        max_length=MAX_DEPENDS_ON,
        required=False,
        default=list,
        help_text="Keys of the blueprints this task waits for (the blueprints form a DAG).",
    )
    checklist = serializers.ListField(
        child=BlueprintChecklistItemSerializer(), required=False, default=list, max_length=MAX_CHECKLIST_ITEMS
    )
    on_predecessor_cancelled = serializers.ChoiceField(
        choices=OnPredecessorCancelled.values,
        required=False,
        default=OnPredecessorCancelled.READY,
        help_text="When a predecessor is cancelled: ready (it counts as done) or cancel (this task is "
        "cancelled too).",
    )


APPROVAL_SCHEMA = {
    "nullable": True,
    "description": "Approvals a plan made from this version needs before activation: "
    '{"count": N, "approvers": [user ids]} or {"count": N, "role": "supervisor"|"agency"|"admin"} '
    "(the plans' approval_policy).",
    "oneOf": [
        {
            "type": "object",
            "required": ["count", "approvers"],
            "additionalProperties": False,
            "properties": {
                "count": {"type": "integer", "minimum": 1, "maximum": APPROVAL_MAX_COUNT},
                "approvers": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "minItems": 1,
                    "maxItems": APPROVERS_MAX,
                    "uniqueItems": True,
                },
            },
        },
        {
            "type": "object",
            "required": ["count", "role"],
            "additionalProperties": False,
            "properties": {
                "count": {"type": "integer", "minimum": 1, "maximum": APPROVAL_MAX_COUNT},
                "role": {"type": "string", "enum": list(APPROVER_ROLES)},
            },
        },
    ],
}


@extend_schema_field(APPROVAL_SCHEMA)
class ApprovalPolicyField(serializers.JSONField):
    """The approval policy as JSON; ``workflow.services.approvals.approval_policy_validate`` checks it."""


def _blueprints_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=BlueprintSerializer(), min_length=1, max_length=MAX_BLUEPRINTS, **kwargs
    )


class PlanTemplateCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    class Meta:
        read_only_names = ("id", "latest_version", "version", "created_by", "created_at", "updated_at")

    name = serializers.CharField(max_length=NAME_MAX_LENGTH)
    description = serializers.CharField(
        max_length=DESCRIPTION_MAX_LENGTH, required=False, default="", allow_blank=True
    )
    agency = serializers.UUIDField(
        required=False, help_text="The owning agency; defaults to a supervisor's own (required for admins)."
    )
    blueprints = _blueprints_field()
    requires_approval = ApprovalPolicyField(required=False, allow_null=True, default=None)


class PlanTemplateUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    """Name and description always; blueprints and approvals change the latest version while no plan uses
    it (else 409 TEMPLATE_VERSION_IN_USE: post a new version)."""

    class Meta:
        read_only_names = (
            "id",
            "agency",
            "latest_version",
            "version",
            "created_by",
            "created_at",
            "updated_at",
        )

    name = serializers.CharField(max_length=NAME_MAX_LENGTH, required=False)
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True)
    blueprints = _blueprints_field(required=False)
    requires_approval = ApprovalPolicyField(required=False, allow_null=True)


class PlanTemplateVersionCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    blueprints = _blueprints_field()
    requires_approval = ApprovalPolicyField(required=False, allow_null=True, default=None)


class PlanTemplateVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    blueprints = BlueprintSerializer(many=True)
    requires_approval = ApprovalPolicyField(allow_null=True)
    in_use = serializers.BooleanField(help_text="A plan uses this version: it can no longer change.")
    created_at = serializers.DateTimeField()


class PlanTemplateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    agency = serializers.UUIDField(source="agency_id")
    name = serializers.CharField()
    description = serializers.CharField()
    latest_version = serializers.IntegerField()
    version = serializers.SerializerMethodField(help_text="The latest version (new plans are made from it).")
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(PlanTemplateVersionSerializer)
    def get_version(self, template: Any) -> dict[str, Any]:
        version = template.latest
        return {
            "number": version.number,
            "blueprints": version.blueprints,
            "requires_approval": version.requires_approval,
            "in_use": version.pk in self.context["in_use"],
            "created_at": serializers.DateTimeField().to_representation(version.created_at),
        }


class PlanTemplateListQuerySerializer(PageQuerySerializer):
    agency = serializers.UUIDField(required=False)
    search = serializers.CharField(required=False, max_length=200)


class PlanFilterSerializer(StrictFieldsMixin, serializers.Serializer):
    """Which plans on ``from_version`` a migration covers (all of them when empty)."""

    plan_ids = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=MAX_PLAN_IDS)
    state = serializers.ListField(
        child=serializers.ChoiceField(choices=ActionPlanState.choices), required=False, max_length=3
    )
    client = serializers.IntegerField(required=False, min_value=1, max_value=MAX_BIGINT)


class PlanMigrationInputSerializer(StrictFieldsMixin, serializers.Serializer):
    from_version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    to_version = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    filter = PlanFilterSerializer(required=False, default=dict)
    dry_run = serializers.BooleanField(required=False, default=True)


class RedateSerializer(serializers.Serializer):
    task = serializers.UUIDField()
    key = serializers.CharField()
    old_due_at = serializers.DateTimeField(allow_null=True)
    new_due_at = serializers.DateTimeField(allow_null=True)


class TaskChangeSerializer(serializers.Serializer):
    task = serializers.UUIDField(allow_null=True, help_text="Null for a task still to be added.")
    key = serializers.CharField()


class PlanChangesSerializer(serializers.Serializer):
    plan = serializers.UUIDField()
    add = TaskChangeSerializer(many=True)
    cancel = TaskChangeSerializer(many=True)
    redate = RedateSerializer(many=True)


class PlanMigrationTotalsSerializer(serializers.Serializer):
    plans = serializers.IntegerField()
    add = serializers.IntegerField()
    cancel = serializers.IntegerField()
    redate = serializers.IntegerField()


class PlanMigrationResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    migration = serializers.IntegerField(allow_null=True, help_text="The applied migration's id.")
    state = serializers.ChoiceField(
        choices=["preview", *PlanMigrationState.values], help_text="preview for a dry run."
    )
    totals = PlanMigrationTotalsSerializer()
    plans = PlanChangesSerializer(many=True)
