"""Task endpoints: list/create, detail, transition, event history (input → service/selector → output)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.api.pagination import StandardPagination
from polaris.api.query_params import query_params_parse
from polaris.idempotency.services import idempotent_response
from workflow import extensions, selectors
from workflow.api.common import (
    IDEMPOTENCY_PARAMETER,
    caller,
    correlation_id_of,
    paginated_response,
    serializer_context,
    uuid_path_parameter,
)
from workflow.api.serializers import (
    EventListQuerySerializer,
    EventSerializer,
    TaskCreateSerializer,
    TaskListQuerySerializer,
    TaskSerializer,
    TaskTransitionResultSerializer,
    TaskTransitionSerializer,
)
from workflow.selectors import task_detail, task_list
from workflow.services.tasks import task_create, task_transition

TASK_ID = uuid_path_parameter("task_id", "The task's id.")
# Declared statically so the schema documents it whether or not the SLA app is installed.
SLA_STATUS_PARAMETER = OpenApiParameter(
    "sla_status",
    str,
    OpenApiParameter.QUERY,
    required=False,
    enum=["running", "paused", "met", "breached", "at_risk"],
    description="Filter by SLA status, provided by the SLA app: running, paused, met, breached or at_risk.",
)


class TaskListCreateView(APIView):
    pagination_class = StandardPagination  # read by the schema generator

    @extend_schema(
        tags=["tasks"],
        summary="List tasks in the caller's scope",
        parameters=[TaskListQuerySerializer, SLA_STATUS_PARAMETER],
        responses=TaskSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters, extension_values = query_params_parse(
            request=request,
            serializer_class=TaskListQuerySerializer,
            extension_filters=extensions.task_filters,
        )
        tasks = task_list(user=caller(request), filters=filters, extension_filters=extension_values)
        return paginated_response(view=self, request=request, queryset=tasks, serializer_class=TaskSerializer)

    @extend_schema(
        tags=["tasks"],
        summary="Create a task (state new)",
        request=TaskCreateSerializer,
        responses={201: TaskSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request) -> Response:
        def perform() -> Response:
            serializer = TaskCreateSerializer(data=request.data, context=serializer_context(request))
            serializer.is_valid(raise_exception=True)
            task = task_create(
                actor=caller(request), correlation_id=correlation_id_of(request), **serializer.validated_data
            )
            body = TaskSerializer(task, context=serializer_context(request)).data
            return Response(body, status=status.HTTP_201_CREATED)

        return idempotent_response(request=request, scope="POST workflow/tasks", perform=perform)


class TaskDetailView(APIView):
    @extend_schema(tags=["tasks"], summary="A task", parameters=[TASK_ID], responses=TaskSerializer)
    def get(self, request: Request, task_id: str) -> Response:
        task = task_detail(user=caller(request), task_id=task_id)
        return Response(TaskSerializer(task, context=serializer_context(request)).data)


class TaskTransitionView(APIView):
    @extend_schema(
        tags=["tasks"],
        summary="Move a task to another state",
        request=TaskTransitionSerializer,
        responses={200: TaskTransitionResultSerializer},
        parameters=[TASK_ID, IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request, task_id: str) -> Response:
        def perform() -> Response:
            # Runs in the transaction: the response (the SLA block included) is read before the commit.
            serializer = TaskTransitionSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            task, event = task_transition(
                task_id=task_id,
                actor=caller(request),
                correlation_id=correlation_id_of(request),
                **serializer.validated_data,
            )
            context = serializer_context(request)
            return Response(
                {
                    "success": True,
                    "task": TaskSerializer(task, context=context).data,
                    "event": EventSerializer(event, context=context).data,
                }
            )

        scope = f"POST workflow/tasks/{task_id}/transition"
        return idempotent_response(request=request, scope=scope, perform=perform)


class TaskEventsView(APIView):
    pagination_class = StandardPagination

    @extend_schema(
        tags=["tasks"],
        summary="The task's domain events, in stream order",
        parameters=[TASK_ID, EventListQuerySerializer],
        responses=EventSerializer(many=True),
    )
    def get(self, request: Request, task_id: str) -> Response:
        query_params_parse(request=request, serializer_class=EventListQuerySerializer)
        events = selectors.task_events(user=caller(request), task_id=task_id)
        return paginated_response(
            view=self, request=request, queryset=events, serializer_class=EventSerializer
        )
