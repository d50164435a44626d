"""Trigger endpoints (admins): the list in evaluation order, and the dry-run."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from ..dry_run import trigger_dry_run
from ..selectors import event_get, trigger_get, trigger_list
from .common import FORBIDDEN, NOT_FOUND, IsAdminRole
from .serializers import DryRunInputSerializer, DryRunOutputSerializer, TriggerOutputSerializer


class TriggerListView(GenericAPIView):
    permission_classes = [IsAdminRole]
    serializer_class = TriggerOutputSerializer

    @extend_schema(
        operation_id="triggers_list",
        tags=["automation"],
        summary="List automation triggers in evaluation order (admins)",
        responses={200: TriggerOutputSerializer(many=True), 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(trigger_list())
        return self.get_paginated_response(TriggerOutputSerializer(page, many=True).data)


class TriggerDryRunView(GenericAPIView):
    permission_classes = [IsAdminRole]
    serializer_class = DryRunInputSerializer

    @extend_schema(
        operation_id="triggers_dry_run",
        tags=["automation"],
        summary="Would this trigger fire for an event? Explains the failing clause; writes nothing (admins)",
        request=DryRunInputSerializer,
        responses={
            200: DryRunOutputSerializer,
            400: OpenApiResponse(description="VALIDATION_ERROR"),
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
        parameters=[OpenApiParameter("trigger_id", int, OpenApiParameter.PATH)],
    )
    def post(self, request: Request, trigger_id: int) -> Response:
        trigger = trigger_get(trigger_id=trigger_id)
        serializer = DryRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "event_id" in data:
            answer = trigger_dry_run(trigger=trigger, event=event_get(event_id=data["event_id"]))
        else:
            answer = trigger_dry_run(trigger=trigger, event_body=data["event"])
        return Response(DryRunOutputSerializer(answer).data)
