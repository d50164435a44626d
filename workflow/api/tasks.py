"""Task endpoints: list/create, detail and edit, assign, transition, event history
(input → service/selector → output)."""

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
    IF_MATCH_PARAMETER,
    caller,
    correlation_id_of,
    if_match_version,
    paginated_response,
    serializer_context,
    uuid_path_parameter,
    with_etag,
)
from workflow.api.edit_serializers import TaskAssignSerializer, TaskUpdateSerializer
from workflow.api.filters import TaskListQuerySerializer, task_list_params
from workflow.api.serializers import (
    EventListQuerySerializer,
    EventSerializer,
    TaskCreateSerializer,
    TaskSerializer,
    TaskTransitionResultSerializer,
    TaskTransitionSerializer,
)
from workflow.models import Task
from workflow.selectors import task_detail, task_list
from workflow.services.tasks import task_assign, task_create, task_transition, task_update

TASK_ID = uuid_path_parameter("task_id", "The task's id.")
# Declared here because workflow cannot import sla, which implements the filter (extensions.task_filters);
# the values are extensions.SLA_STATUS_VALUES, the same tuple sla validates against.
SLA_STATUS_PARAMETER = OpenApiParameter(
    "sla_status",
    str,
    OpenApiParameter.QUERY,
    required=False,
    enum=list(extensions.SLA_STATUS_VALUES),
    description=f"Filter by SLA status, provided by the SLA app: {', '.join(extensions.SLA_STATUS_VALUES)}.",
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
        filters, extension_values = task_list_params(request)
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

        return idempotent_response(
            request=request, scope="POST workflow/tasks", perform=perform, single_write=True
        )


def task_response(task: Task, request: Request) -> Response:
    """The task's representation with its ``ETag``."""
    return with_etag(Response(TaskSerializer(task, context=serializer_context(request)).data), task.version)


class TaskDetailView(APIView):
    @extend_schema(tags=["tasks"], summary="A task", parameters=[TASK_ID], responses=TaskSerializer)
    def get(self, request: Request, task_id: str) -> Response:
        return task_response(task_detail(user=caller(request), task_id=task_id), request)

    @extend_schema(
        tags=["tasks"],
        summary="Edit a task (only the fields sent; one TaskUpdated or TaskAssigned event)",
        parameters=[TASK_ID, IF_MATCH_PARAMETER, IDEMPOTENCY_PARAMETER],
        request=TaskUpdateSerializer,
        responses={200: TaskSerializer},
    )
    def patch(self, request: Request, task_id: str) -> Response:
        def perform() -> Response:
            serializer = TaskUpdateSerializer(data=request.data, context=serializer_context(request))
            serializer.is_valid(raise_exception=True)
            task, _ = task_update(
                task_id=task_id,
                actor=caller(request),
                changes=dict(serializer.validated_data),
                expected_version=if_match_version(request),
                correlation_id=correlation_id_of(request),
            )
            return task_response(task, request)

        return idempotent_response(
            request=request, scope=f"PATCH workflow/tasks/{task_id}", perform=perform, single_write=True
        )


class TaskAssignView(APIView):
    @extend_schema(
        tags=["tasks"],
        summary="Assign or unassign a task (one TaskAssigned event)",
        parameters=[TASK_ID, IF_MATCH_PARAMETER, IDEMPOTENCY_PARAMETER],
        request=TaskAssignSerializer,
        responses={200: TaskSerializer},
    )
    def post(self, request: Request, task_id: str) -> Response:
        def perform() -> Response:
            serializer = TaskAssignSerializer(data=request.data, context=serializer_context(request))
            serializer.is_valid(raise_exception=True)
            task, _ = task_assign(
                task_id=task_id,
                actor=caller(request),
                assignee=serializer.validated_data["assignee"],
                expected_version=if_match_version(request),
                correlation_id=correlation_id_of(request),
            )
            return task_response(task, request)

        return idempotent_response(
            request=request, scope=f"POST workflow/tasks/{task_id}/assign", perform=perform, single_write=True
        )


class TaskTransitionView(APIView):
    @extend_schema(
        tags=["tasks"],
        summary="Move a task to another state",
        request=TaskTransitionSerializer,
        responses={200: TaskTransitionResultSerializer},
        parameters=[TASK_ID, IDEMPOTENCY_PARAMETER, IF_MATCH_PARAMETER],
    )
    def post(self, request: Request, task_id: str) -> Response:
        def perform() -> Response:
            # Runs in the transaction: the response (the SLA block included) is read before the commit.
            serializer = TaskTransitionSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            task, event = task_transition(
                task_id=task_id,
                actor=caller(request),
                expected_version=if_match_version(request),
                correlation_id=correlation_id_of(request),
                **serializer.validated_data,
            )
            context = serializer_context(request)
            response = Response(
                {
                    "success": True,
                    "task": TaskSerializer(task, context=context).data,
                    "event": EventSerializer(event, context=context).data,
                }
            )
            return with_etag(response, task.version)

        scope = f"POST workflow/tasks/{task_id}/transition"
        return idempotent_response(request=request, scope=scope, perform=perform, single_write=True)


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
