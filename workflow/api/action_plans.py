"""Action plan endpoints: list/create, detail (with its tasks summarised) and edit, activate, archive."""

from typing import Any

from django.db.models import prefetch_related_objects
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.api.pagination import StandardPagination
from polaris.api.query_params import query_params_parse
from polaris.errors import ValidationFailed
from polaris.idempotency.services import idempotent_response
from workflow import extensions, selectors
from workflow.api.common import (
    IDEMPOTENCY_PARAMETER,
    IF_MATCH_PARAMETER,
    caller,
    correlation_id_of,
    if_match_version,
    paginated_response,
    serializer_context,
    uuid_path_parameter,
    with_etag,
)
from workflow.api.edit_serializers import ActionPlanUpdateSerializer
from workflow.api.plan_serializers import (
    ActionPlanCreateSerializer,
    ActionPlanDetailSerializer,
    ActionPlanListQuerySerializer,
    ActionPlanSerializer,
    ActionPlanTransitionResultSerializer,
    ActionPlanTransitionSerializer,
)
from workflow.api.serializers import EventSerializer
from workflow.models import ActionPlan
from workflow.selectors import action_plan_list
from workflow.services.action_plans import (
    action_plan_activate,
    action_plan_archive,
    action_plan_create,
    action_plan_update,
)

PLAN_ID = uuid_path_parameter("action_plan_id", "The action plan's id.")


def plan_detail(plan: ActionPlan, request: Request) -> dict:
    """The plan's detail representation. One query each for the task summary, the per-state counts and the
    has_tasks guard alike, and for the approval block and the approved guard (none for relations the
    service already loaded: a plan made from a template comes back with its tasks)."""
    prefetch_related_objects([plan], "tasks", "approvals")
    return ActionPlanDetailSerializer(plan, context=serializer_context(request)).data


def _plan_from_template(request: Request, *, template_id: int, values: dict[str, Any]) -> ActionPlan:
    """The plan and its tasks made by the app that registered ``extensions.plan_instantiators``."""
    if not extensions.plan_instantiators:
        raise ValidationFailed(details={"template": ["Plan templates are not available."]})
    (instantiate,) = extensions.plan_instantiators
    return instantiate(
        actor=caller(request),
        template_id=template_id,
        title=values.get("title", ""),
        description=values.get("description", ""),
        client=values["client"],
        agency=values["agency"],
        correlation_id=correlation_id_of(request),
    )


class ActionPlanListCreateView(APIView):
    pagination_class = StandardPagination  # read by the schema generator

    @extend_schema(
        tags=["action plans"],
        summary="List action plans in the caller's scope",
        parameters=[ActionPlanListQuerySerializer],
        responses=ActionPlanSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters, _ = query_params_parse(request=request, serializer_class=ActionPlanListQuerySerializer)
        plans = action_plan_list(user=caller(request), filters=filters)
        return paginated_response(
            view=self, request=request, queryset=plans, serializer_class=ActionPlanSerializer
        )

    @extend_schema(
        tags=["action plans"],
        summary="Create an action plan (state draft), optionally from a plan template with all its tasks",
        request=ActionPlanCreateSerializer,
        responses={201: ActionPlanDetailSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request) -> Response:
        def perform() -> Response:
            serializer = ActionPlanCreateSerializer(data=request.data, context=serializer_context(request))
            serializer.is_valid(raise_exception=True)
            values = dict(serializer.validated_data)
            template_id = values.pop("template", None)
            if template_id is None:
                plan = action_plan_create(
                    actor=caller(request), correlation_id=correlation_id_of(request), **values
                )
            else:
                plan = _plan_from_template(request, template_id=template_id, values=values)
            return Response(plan_detail(plan, request), status=status.HTTP_201_CREATED)

        # One service call (action_plan_create or the template's instantiator): no savepoint of its own.
        return idempotent_response(
            request=request, scope="POST workflow/action-plans", perform=perform, single_write=True
        )


class ActionPlanDetailView(APIView):
    @extend_schema(
        tags=["action plans"],
        summary="An action plan with its tasks summarised",
        parameters=[PLAN_ID],
        responses=ActionPlanDetailSerializer,
    )
    def get(self, request: Request, action_plan_id: str) -> Response:
        plan = selectors.action_plan_get(user=caller(request), action_plan_id=action_plan_id)
        return with_etag(Response(plan_detail(plan, request)), plan.version)

    @extend_schema(
        tags=["action plans"],
        summary="Edit a plan's title or description (one ActionPlanUpdated event)",
        parameters=[PLAN_ID, IF_MATCH_PARAMETER, IDEMPOTENCY_PARAMETER],
        request=ActionPlanUpdateSerializer,
        responses={200: ActionPlanDetailSerializer},
    )
    def patch(self, request: Request, action_plan_id: str) -> Response:
        def perform() -> Response:
            serializer = ActionPlanUpdateSerializer(data=request.data, context=serializer_context(request))
            serializer.is_valid(raise_exception=True)
            plan, _ = action_plan_update(
                action_plan_id=action_plan_id,
                actor=caller(request),
                changes=dict(serializer.validated_data),
                expected_version=if_match_version(request),
                correlation_id=correlation_id_of(request),
            )
            return with_etag(Response(plan_detail(plan, request)), plan.version)

        scope = f"PATCH workflow/action-plans/{action_plan_id}"
        return idempotent_response(request=request, scope=scope, perform=perform)


class _ActionPlanTransitionView(APIView):
    service = staticmethod(action_plan_activate)
    action = "activate"

    def post(self, request: Request, action_plan_id: str) -> Response:
        def perform() -> Response:
            # Runs in the transaction: the response is read before the commit.
            serializer = ActionPlanTransitionSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            plan, event = self.service(
                action_plan_id=action_plan_id,
                actor=caller(request),
                expected_version=if_match_version(request),
                correlation_id=correlation_id_of(request),
                **serializer.validated_data,
            )
            return with_etag(
                Response(
                    {
                        "success": True,
                        "action_plan": plan_detail(plan, request),
                        "event": EventSerializer(event, context=serializer_context(request)).data,
                    }
                ),
                plan.version,
            )

        scope = f"POST workflow/action-plans/{action_plan_id}/{self.action}"
        return idempotent_response(request=request, scope=scope, perform=perform)


_TRANSITION_SCHEMA: dict[str, Any] = {
    "tags": ["action plans"],
    "parameters": [PLAN_ID, IDEMPOTENCY_PARAMETER, IF_MATCH_PARAMETER],
    "request": ActionPlanTransitionSerializer,
    "responses": {200: ActionPlanTransitionResultSerializer},
}


@extend_schema(methods=["POST"], summary="Activate a draft plan (draft → active)", **_TRANSITION_SCHEMA)
class ActionPlanActivateView(_ActionPlanTransitionView):
    service = staticmethod(action_plan_activate)
    action = "activate"


@extend_schema(
    methods=["POST"],
    summary="Archive a plan (draft → archived, or active → archived once its tasks are closed)",
    **_TRANSITION_SCHEMA,
)
class ActionPlanArchiveView(_ActionPlanTransitionView):
    service = staticmethod(action_plan_archive)
    action = "archive"
