"""Trigger endpoints (admins; a supervisor their agency's triggers, others 404):
list/create, detail/change/delete, the dry-run and the backtest.

Create and change honour ``Idempotency-Key`` and build their response inside the transaction
(``idempotent_response``), like every other mutation; the dry-run and the backtest write nothing."""

from typing import Any, cast

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from polaris.access import manager_scope
from polaris.accounts.models import User
from polaris.api.query_params import query_params_parse
from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER
from polaris.idempotency.services import idempotent_response

from ..backtest import trigger_backtest
from ..dry_run import trigger_dry_run
from ..selectors import event_get, trigger_get, trigger_list
from ..services import trigger_create, trigger_delete, trigger_update
from .common import FORBIDDEN, NOT_FOUND, IsManager
from .serializers import (
    BacktestInputSerializer,
    BacktestOutputSerializer,
    DryRunInputSerializer,
    DryRunOutputSerializer,
    TriggerInputSerializer,
    TriggerListQuerySerializer,
    TriggerOutputSerializer,
)

VALIDATION = OpenApiResponse(description="VALIDATION_ERROR")
TRIGGER_ID = OpenApiParameter("trigger_id", int, OpenApiParameter.PATH)


def _user(request: Request) -> User:
    return cast(User, request.user)


def _input(request: Request, *, partial: bool) -> dict[str, Any]:
    serializer = TriggerInputSerializer(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class TriggerListView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = TriggerOutputSerializer

    @extend_schema(
        operation_id="triggers_list",
        tags=["automation"],
        summary="List automation triggers in evaluation order (admins; supervisors: their agency's)",
        parameters=[TriggerListQuerySerializer],
        responses={200: TriggerOutputSerializer(many=True), 400: VALIDATION, 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        filters, _ = query_params_parse(request=request, serializer_class=TriggerListQuerySerializer)
        page = self.paginate_queryset(trigger_list(user=_user(request), filters=filters))
        return self.get_paginated_response(TriggerOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="triggers_create",
        tags=["automation"],
        summary="Create a trigger, validated like the admin form (admins; supervisors for their agency; "
        "Idempotency-Key honoured)",
        request=TriggerInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: TriggerOutputSerializer, 400: VALIDATION, 403: FORBIDDEN},
    )
    def post(self, request: Request) -> Response:
        def perform() -> Response:
            values = _input(request, partial=False)
            if "agency_id" not in values:  # a supervisor's own agency; an admin's: every agency
                values["agency_id"] = manager_scope(_user(request))
            trigger = trigger_create(**values, actor=_user(request))
            return Response(TriggerOutputSerializer(trigger).data, status=status.HTTP_201_CREATED)

        return idempotent_response(request=request, scope="POST workflow/triggers", perform=perform)


class TriggerDetailView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = TriggerOutputSerializer

    @extend_schema(
        operation_id="triggers_retrieve",
        tags=["automation"],
        summary="One trigger (admins; supervisors: their agency's)",
        responses={200: TriggerOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        parameters=[TRIGGER_ID],
    )
    def get(self, request: Request, trigger_id: int) -> Response:
        return Response(TriggerOutputSerializer(trigger_get(trigger_id=trigger_id, user=_user(request))).data)

    @extend_schema(
        operation_id="triggers_partial_update",
        tags=["automation"],
        summary="Change a trigger (enable/disable too); every change bumps its version (admins/supervisors; "
        "Idempotency-Key honoured)",
        request=TriggerInputSerializer,
        responses={200: TriggerOutputSerializer, 400: VALIDATION, 403: FORBIDDEN, 404: NOT_FOUND},
        parameters=[TRIGGER_ID, IDEMPOTENCY_PARAMETER],
    )
    def patch(self, request: Request, trigger_id: int) -> Response:
        def perform() -> Response:
            trigger = trigger_get(trigger_id=trigger_id, user=_user(request))
            updated = trigger_update(
                trigger_id=trigger.pk, changes=_input(request, partial=True), actor=_user(request)
            )
            return Response(TriggerOutputSerializer(updated).data)

        scope = f"PATCH workflow/triggers/{trigger_id}"
        return idempotent_response(request=request, scope=scope, perform=perform)

    @extend_schema(
        operation_id="triggers_destroy",
        tags=["automation"],
        summary="Delete a trigger and its timers; its execution log stays (admins; supervisors: their "
        "agency's)",
        responses={204: None, 403: FORBIDDEN, 404: NOT_FOUND},
        parameters=[TRIGGER_ID],
    )
    def delete(self, request: Request, trigger_id: int) -> Response:
        trigger = trigger_get(trigger_id=trigger_id, user=_user(request))
        trigger_delete(trigger_id=trigger.pk, actor=_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TriggerDryRunView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = DryRunInputSerializer

    @extend_schema(
        operation_id="triggers_dry_run",
        tags=["automation"],
        summary="Would this trigger fire for an event? Explains the failing clause; writes nothing",
        request=DryRunInputSerializer,
        responses={200: DryRunOutputSerializer, 400: VALIDATION, 403: FORBIDDEN, 404: NOT_FOUND},
        parameters=[TRIGGER_ID],
    )
    def post(self, request: Request, trigger_id: int) -> Response:
        trigger = trigger_get(trigger_id=trigger_id, user=_user(request))
        serializer = DryRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "event_id" in data:
            answer = trigger_dry_run(
                trigger=trigger, event=event_get(event_id=data["event_id"], user=_user(request))
            )
        else:
            answer = trigger_dry_run(trigger=trigger, event_body=data["event"])
        return Response(DryRunOutputSerializer(answer).data)


class TriggerBacktestView(GenericAPIView):
    permission_classes = [IsManager]
    serializer_class = BacktestInputSerializer

    @extend_schema(
        operation_id="triggers_backtest",
        tags=["automation"],
        summary="How often would this trigger have matched (or fired) over history? Writes nothing",
        request=BacktestInputSerializer,
        responses={200: BacktestOutputSerializer, 400: VALIDATION, 403: FORBIDDEN, 404: NOT_FOUND},
        parameters=[TRIGGER_ID],
    )
    def post(self, request: Request, trigger_id: int) -> Response:
        trigger = trigger_get(trigger_id=trigger_id, user=_user(request))
        serializer = BacktestInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        answer = trigger_backtest(trigger=trigger, **serializer.validated_data)
        return Response(BacktestOutputSerializer(answer).data)
