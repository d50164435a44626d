"""``POST /api/workflow/clients/{id}/erase``: erase a client's personal data (admins; ``dry_run`` counts)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.api.strict import StrictFieldsMixin
from polaris.errors import NotFound
from polaris.idempotency.services import idempotent_response
from workflow.api.common import IDEMPOTENCY_PARAMETER, caller, correlation_id_of
from workflow.api.serializers import MAX_BIGINT
from workflow.services.erasure import client_erase


class ClientEraseView(APIView):
    @extend_schema_serializer(component_name="ClientEraseRequest")
    class InputSerializer(StrictFieldsMixin, serializers.Serializer):
        dry_run = serializers.BooleanField(
            required=False, default=False, help_text="Count what would change; change nothing."
        )

    @extend_schema_serializer(component_name="ClientErasure")
    class OutputSerializer(serializers.Serializer):
        success = serializers.BooleanField()
        client_id = serializers.IntegerField()
        dry_run = serializers.BooleanField()
        counts = serializers.DictField(
            child=serializers.IntegerField(), help_text="Rows changed (or that would change), per table/kind."
        )
        event_id = serializers.UUIDField(
            allow_null=True, help_text="The ClientErased event (null on a dry run)."
        )

    @extend_schema(
        tags=["people"],
        summary="Erase a client's personal data everywhere it lives (admins)",
        parameters=[
            OpenApiParameter(
                "client_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The client's id."
            ),
            IDEMPOTENCY_PARAMETER,
        ],
        request=InputSerializer,
        responses={200: OutputSerializer},
    )
    def post(self, request: Request, client_id: str) -> Response:
        def perform() -> Response:
            serializer = self.InputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            if not client_id.isdigit() or int(client_id) > MAX_BIGINT:
                raise NotFound("No such client.")
            result = client_erase(
                client_id=int(client_id),
                actor=caller(request),
                correlation_id=correlation_id_of(request),
                dry_run=serializer.validated_data["dry_run"],
            )
            return Response(self.OutputSerializer({"success": True, **result}).data)

        return idempotent_response(
            request=request, scope=f"POST workflow/clients/{client_id}/erase", perform=perform
        )
