"""The people endpoints: who a caller may assign, create work for or see on its tasks (scoped selector),
and the links of a client to the agencies that serve it (admins; a supervisor for their own agency)."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.accounts.models import Agency, User
from polaris.api.pagination import StandardPagination
from polaris.api.query_params import query_params_parse
from polaris.api.strict import StrictFieldsMixin
from polaris.idempotency.services import idempotent_response
from workflow.api.common import (
    IDEMPOTENCY_PARAMETER,
    caller,
    correlation_id_of,
    paginated_response,
    serializer_context,
    uuid_path_parameter,
)
from workflow.api.serializers import MAX_BIGINT, AgencyField
from workflow.selectors import client_agencies_visible, user_list
from workflow.services.client_links import client_link_check_caller, client_link_create, client_link_delete


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    first_name = serializers.CharField(read_only=True)
    last_name = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=User.Role.choices, read_only=True)
    agency = serializers.UUIDField(source="agency_id", read_only=True, allow_null=True)
    agencies = serializers.SerializerMethodField(
        help_text="A client's agencies (the agencies linked to serve it), for staff: admins see every one, "
        "agency staff only their own; null for other users and for clients' callers."
    )

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField(), allow_null=True))
    def get_agencies(self, user: User) -> Any:
        request = self.context.get("request")
        return client_agencies_visible(viewer=getattr(request, "user", None), client=user)


class UserListQuerySerializer(serializers.Serializer):
    page = serializers.IntegerField(required=False, min_value=1, max_value=MAX_BIGINT)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_BIGINT)
    role = serializers.ChoiceField(choices=User.Role.choices, required=False)
    search = serializers.CharField(
        required=False, max_length=150, help_text="Part of the username, first or last name (any case)."
    )


class UserListView(APIView):
    pagination_class = StandardPagination  # read by the schema generator

    @extend_schema(
        tags=["people"],
        summary="People in the caller's scope (to assign tasks, or to create work for)",
        parameters=[UserListQuerySerializer],
        responses=UserSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        filters, _ = query_params_parse(request=request, serializer_class=UserListQuerySerializer)
        users = user_list(user=caller(request), filters=filters)
        return paginated_response(view=self, request=request, queryset=users, serializer_class=UserSerializer)


USER_ID = OpenApiParameter("user_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The client's id.")
AGENCY_ID = uuid_path_parameter("agency_id", "The agency's id.")


class ClientLinkView(APIView):
    @extend_schema_serializer(component_name="ClientLinkRequest")
    class InputSerializer(StrictFieldsMixin, serializers.Serializer):
        agency = AgencyField(
            queryset=Agency.objects.all(), help_text="The agency that is to serve the client."
        )

    @extend_schema_serializer(component_name="ClientLink")
    class OutputSerializer(serializers.Serializer):
        client = serializers.IntegerField(source="client_id")
        agency = serializers.UUIDField(source="agency_id")
        created_at = serializers.DateTimeField()
        created_by = serializers.IntegerField(source="created_by_id", allow_null=True)

    @extend_schema(
        tags=["people"],
        summary="Link a client to an agency that serves it (one ClientLinked event; 200 if already linked)",
        parameters=[USER_ID, IDEMPOTENCY_PARAMETER],
        request=InputSerializer,
        responses={201: OutputSerializer, 200: OutputSerializer},
    )
    def post(self, request: Request, user_id: str) -> Response:
        def perform() -> Response:
            client_link_check_caller(actor=caller(request))  # agents and clients: 403 before anything else
            serializer = self.InputSerializer(data=request.data, context=serializer_context(request))
            serializer.is_valid(raise_exception=True)
            link, created = client_link_create(
                actor=caller(request),
                client_id=user_id,
                agency=serializer.validated_data["agency"],
                correlation_id=correlation_id_of(request),
            )
            code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
            return Response(self.OutputSerializer(link).data, status=code)

        return idempotent_response(
            request=request, scope=f"POST workflow/users/{user_id}/agencies", perform=perform
        )


class ClientUnlinkView(APIView):
    @extend_schema(
        tags=["people"],
        summary="Unlink a client from an agency (one ClientUnlinked event)",
        parameters=[USER_ID, AGENCY_ID],
        request=None,
        responses={204: None},
    )
    def delete(self, request: Request, user_id: str, agency_id: str) -> Response:
        client_link_delete(
            actor=caller(request),
            client_id=user_id,
            agency_id=agency_id,
            correlation_id=correlation_id_of(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
