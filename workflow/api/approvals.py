"""``POST /action-plans/{id}/approvals``: an eligible approver's vote on a draft plan (input → service → the
plan with where its approval stands)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.api.strict import StrictFieldsMixin
from polaris.idempotency.services import idempotent_response
from workflow.api.action_plans import PLAN_ID, plan_detail
from workflow.api.common import IDEMPOTENCY_PARAMETER, caller, correlation_id_of, with_etag
from workflow.api.plan_serializers import ActionPlanDetailSerializer
from workflow.models import ApprovalDecision
from workflow.services.approvals import APPROVAL_COMMENT_MAX_LENGTH, action_plan_approval_record


class ApprovalCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    """An approver's vote."""

    decision = serializers.ChoiceField(choices=ApprovalDecision.choices)
    comment = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=APPROVAL_COMMENT_MAX_LENGTH,
        help_text="Required for a rejection (shown on the plan as last_rejection).",
    )


class ActionPlanApprovalsView(APIView):
    @extend_schema(
        tags=["action plans"],
        summary="Approve or reject a draft plan (eligible approvers; one ActionPlanApprovalRecorded event)",
        parameters=[PLAN_ID, IDEMPOTENCY_PARAMETER],
        request=ApprovalCreateSerializer,
        responses={201: ActionPlanDetailSerializer},
    )
    def post(self, request: Request, action_plan_id: str) -> Response:
        def perform() -> Response:
            serializer = ApprovalCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            plan, _, _ = action_plan_approval_record(
                action_plan_id=action_plan_id,
                actor=caller(request),
                correlation_id=correlation_id_of(request),
                **serializer.validated_data,
            )
            return with_etag(
                Response(plan_detail(plan, request), status=status.HTTP_201_CREATED), plan.version
            )

        scope = f"POST workflow/action-plans/{action_plan_id}/approvals"
        return idempotent_response(request=request, scope=scope, perform=perform, single_write=True)
