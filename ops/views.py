"""The stats API: thin — resolve the caller's scope, call the selector, serialize."""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.accounts.models import User
from polaris.api.schema import ErrorEnvelopeSerializer
from workflow.models import ActionPlanState, TaskState

from . import stats


def _state_counts_serializer(name: str, states: list[str]) -> type[serializers.Serializer]:
    fields = {state: serializers.IntegerField() for state in states}
    return type(name, (serializers.Serializer,), fields)


class SLAStatsSerializer(serializers.Serializer):
    running = serializers.IntegerField(
        help_text="Clocks running now, at-risk ones included (the task list's ?sla_status=running leaves "
        "those out: it lists running minus at_risk)."
    )
    paused = serializers.IntegerField()
    at_risk = serializers.IntegerField(
        help_text="Running clocks past a warning threshold or their due time (?sla_status=at_risk)."
    )
    breached = serializers.IntegerField()


class OutboxStatsSerializer(serializers.Serializer):
    pending = serializers.IntegerField(
        help_text="Not yet dispatched: waiting, retrying or claimed right now."
    )
    processing = serializers.IntegerField(help_text="Of the pending, claimed by a dispatcher right now.")
    dead = serializers.IntegerField(help_text="Dead-lettered, awaiting replay.")
    oldest_pending_at = serializers.DateTimeField(allow_null=True)
    oldest_pending_age_seconds = serializers.FloatField()


class AutomationStatsSerializer(serializers.Serializer):
    trigger_executions_24h = serializers.IntegerField()
    webhook_failures_24h = serializers.IntegerField(help_text="Failed, refused (SSRF guard) or dead.")


class WorkflowStatsSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["global", "agency"])
    agency_id = serializers.UUIDField(allow_null=True)
    generated_at = serializers.DateTimeField()
    tasks = _state_counts_serializer("TaskStateCounts", list(TaskState.values))()
    action_plans = _state_counts_serializer("ActionPlanStateCounts", list(ActionPlanState.values))()
    sla = SLAStatsSerializer()
    outbox = OutboxStatsSerializer()
    automation = AutomationStatsSerializer(help_text="Last 24 h.")


class WorkflowStatsView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="workflow_stats",
        summary="Operational statistics",
        description=(
            "Tasks and plans per state, SLA running/at-risk/breached, outbox backlog and lag, dead events, "
            "trigger executions and webhook failures in the last 24 h. Admins see every agency; agency "
            "staff their own agency; clients are refused (403)."
        ),
        tags=["operations"],
        responses={
            200: WorkflowStatsSerializer,
            401: OpenApiResponse(ErrorEnvelopeSerializer, description="NOT_AUTHENTICATED"),
            403: OpenApiResponse(ErrorEnvelopeSerializer, description="PERMISSION_DENIED (clients)"),
        },
    )
    def get(self, request: Request) -> Response:
        user = cast(User, request.user)  # IsAuthenticated: never anonymous here
        return Response(WorkflowStatsSerializer(stats.workflow_stats(user=user)).data)
