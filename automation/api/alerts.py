"""Alert endpoints: the list in the caller's scope, and acknowledging one."""

from typing import cast

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from polaris.accounts.models import User
from polaris.api.query_params import PageQuerySerializer, query_params_parse
from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER
from polaris.idempotency.services import idempotent_response

from ..alerts import alert_acknowledge
from ..selectors import alert_queryset
from .common import FORBIDDEN, NOT_FOUND
from .serializers import AlertOutputSerializer


class AlertListView(GenericAPIView):
    serializer_class = AlertOutputSerializer

    @extend_schema(
        operation_id="alerts_list",
        tags=["automation"],
        summary="List alerts, newest first (admins: all; agency agents: their agency; clients: 403)",
        parameters=[PageQuerySerializer],
        responses={200: AlertOutputSerializer(many=True), 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        query_params_parse(request=request, serializer_class=PageQuerySerializer)
        page = self.paginate_queryset(alert_queryset(user=cast(User, request.user)))
        return self.get_paginated_response(AlertOutputSerializer(page, many=True).data)


class AlertAcknowledgeView(GenericAPIView):
    serializer_class = AlertOutputSerializer

    @extend_schema(
        operation_id="alerts_acknowledge",
        tags=["automation"],
        summary="Acknowledge an alert in your scope (idempotent)",
        request=None,
        responses={200: AlertOutputSerializer, 403: FORBIDDEN, 404: NOT_FOUND},
        parameters=[OpenApiParameter("alert_id", int, OpenApiParameter.PATH), IDEMPOTENCY_PARAMETER],
    )
    def post(self, request: Request, alert_id: int) -> Response:
        def perform() -> Response:
            alert = alert_acknowledge(alert_id=alert_id, actor=cast(User, request.user))
            return Response(AlertOutputSerializer(alert).data)

        scope = f"POST automation/alerts/{alert_id}/acknowledge"
        return idempotent_response(request=request, scope=scope, perform=perform)
