"""SLA config endpoints: list/create and detail/change, thin views over ``sla.configs``.

Create and change honour ``Idempotency-Key`` and build their response inside the transaction
(``idempotent_response``), like every other mutation."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from polaris.api.query_params import PageQuerySerializer, query_params_parse
from polaris.idempotency.schema import IDEMPOTENCY_PARAMETER
from polaris.idempotency.services import idempotent_response
from sla.api.serializers import SLAConfigInputSerializer, SLAConfigOutputSerializer
from sla.configs import (
    sla_config_create,
    sla_config_get,
    sla_config_list,
    sla_config_require_admin,
    sla_config_update,
)
from workflow.api.common import caller

CONFIG_ID = OpenApiParameter("config_id", int, OpenApiParameter.PATH, description="The SLA config's id.")
ERRORS = {
    400: OpenApiResponse(description="VALIDATION_ERROR"),
    403: OpenApiResponse(description="PERMISSION_DENIED"),
    409: OpenApiResponse(
        description="SLA_CONFIG_CONFLICT: another active config already covers the same service area and "
        "task type (details.conflicting_config names it)."
    ),
}


class SLAConfigListCreateView(GenericAPIView):
    serializer_class = SLAConfigOutputSerializer

    @extend_schema(
        operation_id="sla_configs_list",
        tags=["sla"],
        summary="List SLA configs (admins and agency agents)",
        parameters=[PageQuerySerializer],
        responses={200: SLAConfigOutputSerializer(many=True), 403: ERRORS[403]},
    )
    def get(self, request: Request) -> Response:
        query_params_parse(request=request, serializer_class=PageQuerySerializer)
        page = self.paginate_queryset(sla_config_list(user=caller(request)))
        return self.get_paginated_response(SLAConfigOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="sla_configs_create",
        tags=["sla"],
        summary="Create an SLA config (admins)",
        request=SLAConfigInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: SLAConfigOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        def perform() -> Response:
            sla_config_require_admin(caller(request))
            serializer = SLAConfigInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            config = sla_config_create(actor=caller(request), **serializer.validated_data)
            return Response(SLAConfigOutputSerializer(config).data, status=status.HTTP_201_CREATED)

        return idempotent_response(request=request, scope="POST workflow/sla-configs", perform=perform)


class SLAConfigDetailView(GenericAPIView):
    serializer_class = SLAConfigOutputSerializer

    @extend_schema(
        operation_id="sla_configs_retrieve",
        parameters=[CONFIG_ID],
        tags=["sla"],
        summary="Read one SLA config (admins and agency agents)",
        responses={
            200: SLAConfigOutputSerializer,
            403: ERRORS[403],
            404: OpenApiResponse(description="NOT_FOUND"),
        },
    )
    def get(self, request: Request, config_id: str) -> Response:
        config = sla_config_get(user=caller(request), config_id=config_id)
        return Response(SLAConfigOutputSerializer(config).data)

    @extend_schema(
        operation_id="sla_configs_partial_update",
        parameters=[CONFIG_ID, IDEMPOTENCY_PARAMETER],
        tags=["sla"],
        summary="Change an SLA config (admins); running SLA records keep their snapshot",
        request=SLAConfigInputSerializer,
        responses={200: SLAConfigOutputSerializer, **ERRORS, 404: OpenApiResponse(description="NOT_FOUND")},
    )
    def patch(self, request: Request, config_id: str) -> Response:
        def perform() -> Response:
            sla_config_require_admin(caller(request))
            serializer = SLAConfigInputSerializer(data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            config = sla_config_update(
                actor=caller(request), config_id=config_id, **serializer.validated_data
            )
            return Response(SLAConfigOutputSerializer(config).data)

        scope = f"PATCH workflow/sla-configs/{config_id}"
        return idempotent_response(request=request, scope=scope, perform=perform)
