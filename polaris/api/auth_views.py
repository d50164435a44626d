"""Authentication endpoints: JWT pair, refresh (rotating) and logout (simplejwt), and ``me``."""

from typing import Any, NoReturn

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views

from polaris.accounts.services import refresh_token_revoke

from .throttling import AnonRateThrottle, LoginAddressThrottle, LoginUsernameThrottle


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    role = serializers.CharField()
    agency = serializers.UUIDField(source="agency_id", allow_null=True)


@extend_schema(tags=["auth"], summary="Obtain an access and a refresh token", auth=[])
class TokenObtainPairView(jwt_views.TokenObtainPairView):
    """Limited per client address and per username (every attempt counts, known user or not); an unknown
    user and a wrong password get the same 401."""

    throttle_classes = [AnonRateThrottle, LoginAddressThrottle, LoginUsernameThrottle]

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        raise Throttled(wait, detail="Too many login attempts.")


@extend_schema(
    tags=["auth"],
    summary="Exchange a refresh token for a new pair (the old refresh token is revoked)",
    auth=[],
)
class TokenRefreshView(jwt_views.TokenRefreshView):
    pass


class LogoutView(APIView):
    """Revoke the refresh token given (blacklisted: it can no longer be refreshed)."""

    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes: list[type[BaseThrottle]] = [AnonRateThrottle]

    @extend_schema_serializer(component_name="LogoutRequest")
    class InputSerializer(serializers.Serializer):
        refresh = serializers.CharField()

    @extend_schema(
        tags=["auth"],
        summary="Log out: revoke a refresh token",
        auth=[],
        request=InputSerializer,
        responses={204: OpenApiResponse(description="Revoked.")},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refresh_token_revoke(token=serializer.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """The caller: id, username, role and agency. Clients use it to learn their own id."""

    @extend_schema(tags=["auth"], summary="The authenticated caller", responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)
