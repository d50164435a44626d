"""Checklist endpoints: add items to a task, tick or untick one (input → service → the task).

Both answer with the task's representation (its ``checklist`` in order, its new ``ETag``): a tick changes
what the task may do next (``available_transitions``), so the caller sees it at once.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.api.strict import StrictFieldsMixin
from polaris.idempotency.services import idempotent_response
from workflow.api.common import (
    IDEMPOTENCY_PARAMETER,
    caller,
    correlation_id_of,
    serializer_context,
    uuid_path_parameter,
    with_etag,
)
from workflow.api.serializers import TaskSerializer
from workflow.models import Task
from workflow.services.checklists import (
    CHECKLIST_MAX_ITEMS,
    CHECKLIST_TEXT_MAX_LENGTH,
    checklist_add,
    checklist_item_set_done,
)

TASK_ID = uuid_path_parameter("task_id", "The task's id.")
ITEM_ID = uuid_path_parameter("item_id", "The checklist item's id.")


class ChecklistItemInputSerializer(StrictFieldsMixin, serializers.Serializer):
    """One checklist item to add."""

    text = serializers.CharField(min_length=1, max_length=CHECKLIST_TEXT_MAX_LENGTH)
    required = serializers.BooleanField(  # type: ignore[assignment]  # the field is named "required"
        required=False, default=True, help_text="A required item left open refuses completion (default true)."
    )


class ChecklistAddSerializer(StrictFieldsMixin, serializers.Serializer):
    """Items to append to a task's checklist, in order."""

    # A ListField, not ``many=True``: its bounds reach the schema (minItems, maxItems).
    items = serializers.ListField(
        child=ChecklistItemInputSerializer(),
        min_length=1,
        max_length=CHECKLIST_MAX_ITEMS,
        help_text=f"Appended in order; a task holds at most {CHECKLIST_MAX_ITEMS} items in all.",
    )


class ChecklistItemUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    """A tick or an untick."""

    done = serializers.BooleanField(
        required=False,
        help_text="true ticks the item, false unticks it; left out, nothing changes.",
    )


def _task_response(task: Task, request: Request, code: int = status.HTTP_200_OK) -> Response:
    body = TaskSerializer(task, context=serializer_context(request)).data
    return with_etag(Response(body, status=code), task.version)


class TaskChecklistView(APIView):
    @extend_schema(
        tags=["tasks"],
        summary="Add checklist items to a task (staff; one TaskChecklistItemsAdded event)",
        parameters=[TASK_ID, IDEMPOTENCY_PARAMETER],
        request=ChecklistAddSerializer,
        responses={201: TaskSerializer},
    )
    def post(self, request: Request, task_id: str) -> Response:
        def perform() -> Response:
            serializer = ChecklistAddSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            task = checklist_add(
                task_id=task_id,
                items=[dict(item) for item in serializer.validated_data["items"]],
                actor=caller(request),
                correlation_id=correlation_id_of(request),
            )
            return _task_response(task, request, status.HTTP_201_CREATED)

        scope = f"POST workflow/tasks/{task_id}/checklist"
        return idempotent_response(request=request, scope=scope, perform=perform, single_write=True)


class TaskChecklistItemView(APIView):
    @extend_schema(
        tags=["tasks"],
        summary="Tick or untick a checklist item (staff; one TaskChecklistItemChanged event)",
        parameters=[TASK_ID, ITEM_ID, IDEMPOTENCY_PARAMETER],
        request=ChecklistItemUpdateSerializer,
        responses={200: TaskSerializer},
    )
    def patch(self, request: Request, task_id: str, item_id: str) -> Response:
        def perform() -> Response:
            serializer = ChecklistItemUpdateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            task, _, _ = checklist_item_set_done(
                task_id=task_id,
                item_id=item_id,
                done=serializer.validated_data.get("done"),
                actor=caller(request),
                correlation_id=correlation_id_of(request),
            )
            return _task_response(task, request)

        scope = f"PATCH workflow/tasks/{task_id}/checklist/{item_id}"
        return idempotent_response(request=request, scope=scope, perform=perform, single_write=True)
