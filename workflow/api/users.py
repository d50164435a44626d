"""The people endpoint: who a caller may assign, create work for or see on its tasks (scoped selector)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from polaris.accounts.models import User
from polaris.api.pagination import StandardPagination
from polaris.api.query_params import query_params_parse
from workflow.api.common import caller, paginated_response
from workflow.api.serializers import MAX_BIGINT
from workflow.selectors import user_list


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    first_name = serializers.CharField(read_only=True)
    last_name = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=User.Role.choices, read_only=True)
    agency = serializers.UUIDField(source="agency_id", read_only=True, allow_null=True)


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
