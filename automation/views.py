"""Automation endpoints: thin views over ``automation.selectors``, ``services`` and the engine's dry-run."""

from typing import cast

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from polaris.accounts.models import User

from .engine import trigger_dry_run
from .selectors import alert_queryset, event_get, trigger_get, trigger_list
from .serializers import (
    AlertOutputSerializer,
    DryRunInputSerializer,
    DryRunOutputSerializer,
    TriggerOutputSerializer,
)
from .services import alert_acknowledge

FORBIDDEN = OpenApiResponse(description="PERMISSION_DENIED")
NOT_FOUND = OpenApiResponse(description="NOT_FOUND")


class IsAdminRole(BasePermission):
    message = "Only admins may manage automation."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.role == User.Role.ADMIN)


class TriggerListApi(GenericAPIView):
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


class TriggerDryRunApi(GenericAPIView):
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


class AlertListApi(GenericAPIView):
    serializer_class = AlertOutputSerializer

    @extend_schema(
        operation_id="alerts_list",
        tags=["automation"],
        summary="List alerts, newest first (admins: all; agency agents: their agency; clients: 403)",
        responses={200: AlertOutputSerializer(many=True), 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(alert_queryset(user=cast(User, request.user)))
        return self.get_paginated_response(AlertOutputSerializer(page, many=True).data)


class AlertAcknowledgeApi(GenericAPIView):
    serializer_class = AlertOutputSerializer

    @extend_schema(
        operation_id="alerts_acknowledge",
        tags=["automation"],
        summary="Acknowledge an alert in your scope (idempotent)",
        request=None,
        responses={200: AlertOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        parameters=[OpenApiParameter("alert_id", int, OpenApiParameter.PATH)],
    )
    def post(self, request: Request, alert_id: int) -> Response:
        alert = alert_acknowledge(alert_id=alert_id, actor=cast(User, request.user))
        return Response(AlertOutputSerializer(alert).data)
