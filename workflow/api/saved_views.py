"""Saved views: ``GET/POST /api/workflow/views``, ``GET/PATCH/DELETE /api/workflow/views/{id}`` and
``GET /api/workflow/views/{id}/tasks`` (the task list for the view's filter, run as the caller).

Staff only (clients: 403). Admins see every view; staff their own and their agency's shared ones; any
other view is 404. A view's ``filter`` is validated by the task list's own parser (``workflow.api.filters``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.api.pagination import StandardPagination
from polaris.api.query_params import PageQuerySerializer, query_params_parse
from polaris.api.strict import StrictFieldsMixin
from polaris.errors import ValidationFailed
from polaris.idempotency.services import idempotent_response
from workflow.api.common import (
    IDEMPOTENCY_PARAMETER,
    caller,
    paginated_response,
    serializer_context,
    uuid_path_parameter,
)
from workflow.api.filters import TaskFilterObjectSerializer, task_filter_parse
from workflow.api.serializers import TaskSerializer
from workflow.saved_views import SAVED_VIEW_NAME_MAX_LENGTH, SavedView
from workflow.selectors import saved_view_get, saved_view_list, task_list
from workflow.services.saved_views import (
    may_change_saved_view,
    saved_view_create,
    saved_view_delete,
    saved_view_update,
)

VIEW_ID = uuid_path_parameter("view_id", "The saved view's id.")


class SavedViewFilterSerializer(TaskFilterObjectSerializer):
    """A saved view's ``filter``: the task list's query parameters as a JSON object (values of their JSON
    types), ``ordering`` included; not ``page`` or ``page_size``."""


@extend_schema_field(SavedViewFilterSerializer)
class SavedViewFilterField(serializers.JSONField):
    """The filter as given (stored so), once the list's parser has accepted it."""

    def to_internal_value(self, data: Any) -> Any:
        task_filter_parse(data, shape=SavedViewFilterSerializer())  # ValidationFailed under "filter"
        return dict(data)


class SavedViewInputSerializer(StrictFieldsMixin, serializers.Serializer):
    class Meta:
        read_only_names = ("id", "owner", "agency", "editable", "created_at", "updated_at")

    name = serializers.CharField(max_length=SAVED_VIEW_NAME_MAX_LENGTH)
    filter = SavedViewFilterField(
        required=False, help_text='The task list\'s filters, e.g. {"state": "new,blocked", "assignee": "me"}.'
    )
    shared = serializers.BooleanField(
        required=False, help_text="Shared with the owner's agency (default false: private to the owner)."
    )


class SavedViewSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)
    filter = SavedViewFilterField(read_only=True)
    shared = serializers.BooleanField(read_only=True)
    owner = serializers.IntegerField(source="owner_id", read_only=True)
    agency = serializers.UUIDField(source="agency_id", read_only=True, allow_null=True)
    editable = serializers.SerializerMethodField(help_text="Whether the caller may change or delete it.")
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_editable(self, view: SavedView) -> bool:
        return may_change_saved_view(view, self.context["request"].user)


class SavedViewListQuerySerializer(PageQuerySerializer):
    """``page`` and ``page_size`` only."""


def _input(request: Request, *, partial: bool) -> dict[str, Any]:
    serializer = SavedViewInputSerializer(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _view_response(view: SavedView, request: Request, code: int = status.HTTP_200_OK) -> Response:
    return Response(SavedViewSerializer(view, context=serializer_context(request)).data, status=code)


class SavedViewListCreateView(APIView):
    pagination_class = StandardPagination

    @extend_schema(
        tags=["views"],
        summary="Saved views the caller may open: their own and their agency's shared ones (staff only)",
        parameters=[SavedViewListQuerySerializer],
        responses=SavedViewSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        query_params_parse(request=request, serializer_class=SavedViewListQuerySerializer)
        views = saved_view_list(user=caller(request))
        return paginated_response(
            view=self, request=request, queryset=views, serializer_class=SavedViewSerializer
        )

    @extend_schema(
        tags=["views"],
        summary="Save a task-list filter under a name, private or shared with the agency (staff only)",
        request=SavedViewInputSerializer,
        responses={201: SavedViewSerializer},
        parameters=[IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request) -> Response:
        def perform() -> Response:
            values = _input(request, partial=False)
            view = saved_view_create(
                actor=caller(request),
                name=values["name"],
                filter=values.get("filter", {}),
                shared=values.get("shared", False),
            )
            return _view_response(view, request, status.HTTP_201_CREATED)

        return idempotent_response(request=request, scope="POST workflow/views", perform=perform)


class SavedViewDetailView(APIView):
    @extend_schema(
        tags=["views"], summary="A saved view", parameters=[VIEW_ID], responses=SavedViewSerializer
    )
    def get(self, request: Request, view_id: str) -> Response:
        return _view_response(saved_view_get(user=caller(request), view_id=view_id), request)

    @extend_schema(
        tags=["views"],
        summary="Rename, refilter, share or unshare a view (owner, admins, the agency's supervisors)",
        request=SavedViewInputSerializer,
        responses={200: SavedViewSerializer},
        parameters=[VIEW_ID, IDEMPOTENCY_PARAMETER],
    )
    def patch(self, request: Request, view_id: str) -> Response:
        def perform() -> Response:
            changes = _input(request, partial=True)
            view = saved_view_update(actor=caller(request), view_id=view_id, changes=changes)
            return _view_response(view, request)

        return idempotent_response(request=request, scope=f"PATCH workflow/views/{view_id}", perform=perform)

    @extend_schema(
        tags=["views"],
        summary="Delete a view (its owner, an admin, or the agency's supervisors)",
        parameters=[VIEW_ID],
        responses={204: None},
    )
    def delete(self, request: Request, view_id: str) -> Response:
        saved_view_delete(actor=caller(request), view_id=view_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SavedViewTasksView(APIView):
    pagination_class = StandardPagination

    @extend_schema(
        tags=["views"],
        summary="The task list for the view's filter, in the caller's scope (paginated, with a count)",
        parameters=[VIEW_ID, SavedViewListQuerySerializer],
        responses=TaskSerializer(many=True),
    )
    def get(self, request: Request, view_id: str) -> Response:
        query_params_parse(request=request, serializer_class=SavedViewListQuerySerializer)
        user = caller(request)
        view = saved_view_get(user=user, view_id=view_id)
        try:
            filters, extension_values = task_filter_parse(view.filter, shape=SavedViewFilterSerializer())
        except ValidationFailed as exc:  # a filter saved under rules since tightened
            raise ValidationFailed(
                "The view's filter is no longer valid; change it (PATCH).", details=exc.details
            ) from None
        tasks = task_list(user=user, filters=filters, extension_filters=extension_values)
        return paginated_response(view=self, request=request, queryset=tasks, serializer_class=TaskSerializer)
