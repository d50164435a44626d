"""Dispatch endpoints: replaying a dead-lettered event (admins only)."""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbox.models import OutboxEvent
from outbox.replay import outbox_event_replay
from polaris.accounts.models import User
from polaris.api.schema import error_response
from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER
from polaris.idempotency.services import idempotent_response


class OutboxEventDispatchSerializer(serializers.ModelSerializer):
    """An event with its dispatch state."""

    class Meta:
        model = OutboxEvent
        fields = (
            "id",
            "event_type",
            "aggregate_type",
            "aggregate_id",
            "sequence",
            "occurred_at",
            "correlation_id",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "dispatched_at",
        )
        read_only_fields = fields


class OutboxEventReplayView(APIView):
    """``POST /api/workflow/events/{id}/replay``: put a dead event back in the dispatch queue."""

    @extend_schema(
        operation_id="workflow_event_replay",
        summary="Replay a dead-lettered event",
        description=(
            "Admins only. Moves a `dead` event back to `pending` with its attempts reset; handlers that "
            "already handled it are skipped. 409 CONFLICT when the event is not dead."
        ),
        tags=["events"],
        request=None,
        parameters=[
            OpenApiParameter("event_id", str, OpenApiParameter.PATH, description="Event UUID"),
            IDEMPOTENCY_PARAMETER,
        ],
        responses={
            200: OutboxEventDispatchSerializer,
            403: error_response("403", "PERMISSION_DENIED: only administrators replay events."),
            404: error_response("404", "NOT_FOUND: no event with this id."),
            409: error_response("409", "CONFLICT: the event is not dead (details.status says what it is)."),
        },
    )
    def post(self, request: Request, event_id: str) -> Response:
        def perform() -> Response:
            event = outbox_event_replay(event_id=event_id, actor=cast(User, request.user))
            return Response(OutboxEventDispatchSerializer(event).data)

        scope = f"POST workflow/events/{event_id}/replay"
        return idempotent_response(request=request, scope=scope, perform=perform)
