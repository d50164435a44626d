"""Authentication endpoints: JWT pair and refresh (simplejwt), and ``me``."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.CharField()
    agency = serializers.UUIDField(source="agency_id", allow_null=True)


@extend_schema(tags=["auth"], summary="Obtain an access and a refresh token", auth=[])
class TokenObtainPairView(jwt_views.TokenObtainPairView):
    pass


@extend_schema(tags=["auth"], summary="Exchange a refresh token for a new access token", auth=[])
class TokenRefreshView(jwt_views.TokenRefreshView):
    pass


class MeView(APIView):
    """The caller: id, username, role and agency. Clients use it to learn their own id."""

    @extend_schema(tags=["auth"], summary="The authenticated caller", responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)
