"""Routing on demand: a task's ranked assignee suggestions (read-only) and routing it now.

Both are for the task's agency staff and admins (clients 403; another agency's task 404)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.access import agency_scope
from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER
from polaris.idempotency.services import idempotent_response
from workflow.api.common import caller, correlation_id_of, uuid_path_parameter, with_etag
from workflow.selectors import task_get

from ..selectors import decision_for
from ..services.route import task_route
from .common import FORBIDDEN, NOT_FOUND
from .serializers import RouteResultSerializer, SuggestionsSerializer

TASK_ID = uuid_path_parameter("task_id", "The task's id.")
STAFF_ONLY = "Routing is for administrators and agency staff."


class AssigneeSuggestionsView(APIView):
    @extend_schema(
        operation_id="task_assignee_suggestions",
        tags=["routing"],
        summary="Who routing would choose for this task, ranked, each with a score and its reasons "
        "(nothing written)",
        parameters=[TASK_ID],
        responses={200: SuggestionsSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, task_id: str) -> Response:
        agency_scope(caller(request), STAFF_ONLY)
        task = task_get(user=caller(request), task_id=task_id)
        rule, decision, _ = decision_for(task)
        data = {
            "task": task.pk,
            "rule": rule.pk if rule else None,
            "strategy": rule.strategy if rule else None,
            "suggestions": decision.ranked,
            "excluded": decision.excluded,
            "reasons": decision.reasons,
        }
        return Response(SuggestionsSerializer(data).data)


class TaskRouteView(APIView):
    @extend_schema(
        operation_id="task_route",
        tags=["routing"],
        summary="Route this task now: the matching rule's choice becomes its assignee (TaskAssigned with "
        "the rule, strategy and reasons), or TaskRoutingFailed says why nobody could (Idempotency-Key)",
        parameters=[TASK_ID, IDEMPOTENCY_PARAMETER],
        request=None,
        responses={200: RouteResultSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request: Request, task_id: str) -> Response:
        def perform() -> Response:
            agency_scope(caller(request), STAFF_ONLY)
            outcome = task_route(
                task_id=task_id, actor=caller(request), correlation_id=correlation_id_of(request)
            )
            data = {
                "task": outcome.task.pk,
                "assigned": outcome.assigned,
                "assignee": outcome.assignee_id,
                "rule": outcome.rule.pk if outcome.rule else None,
                "strategy": outcome.rule.strategy if outcome.rule else None,
                "reasons": outcome.reasons,
                "event": outcome.event.id if outcome.event else None,
                "version": outcome.task.version,
            }
            return with_etag(Response(RouteResultSerializer(data).data), outcome.task.version)

        return idempotent_response(
            request=request, scope=f"POST workflow/tasks/{task_id}/route", perform=perform
        )
