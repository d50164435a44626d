"""Revocable JWTs: every token carries its user's ``token_version`` ("ver"); refresh rotates and blacklists.

``User.token_version`` is bumped by a password, role or ``is_active`` change (``User.save``). An access
token is checked against it on each request (``polaris.api.authentication``: the user row is read anyway,
so the check costs a comparison); a refresh token here, before a new pair is minted. Refresh rotation with
blacklisting (simplejwt's ``token_blacklist``) makes each refresh token good once, and logout blacklists
the one it is given.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from drf_spectacular.contrib.rest_framework_simplejwt import (
    TokenObtainPairSerializerExtension,
    TokenRefreshSerializerExtension,
)
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token

VERSION_CLAIM = "ver"


class TokenRevoked(AuthenticationFailed):
    default_detail = "Token has been revoked."
    default_code = "token_revoked"


def token_version_current(token: Token, user: Any) -> bool:
    """Whether ``token`` was issued under ``user``'s current token version (a token without the claim,
    minted before versions existed, counts as version 0)."""
    if not getattr(settings, "JWT_TOKEN_VERSION_CHECK", True):
        return True
    return token.get(VERSION_CLAIM, 0) == user.token_version


def token_for_user(user: Any) -> RefreshToken:
    """A refresh token (and through ``.access_token`` its access token) carrying the user's version."""
    token = RefreshToken.for_user(user)
    token[VERSION_CLAIM] = user.token_version
    return token


class TokenObtainPairSerializer(jwt_serializers.TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user: Any) -> Token:
        token = super().get_token(user)
        token[VERSION_CLAIM] = user.token_version
        return token


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    """simplejwt's (blacklist check, active check, rotation), after the version check."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            refresh = self.token_class(attrs["refresh"])
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        user_id = refresh.payload.get(api_settings.USER_ID_CLAIM)
        user = get_user_model()._default_manager.filter(**{api_settings.USER_ID_FIELD: user_id}).first()
        if user is None or not user.is_active:
            raise AuthenticationFailed(
                "No active account found for the given token.", code="no_active_account"
            )
        if not token_version_current(refresh, user):
            raise TokenRevoked()
        return super().validate(attrs)


# The OpenAPI shapes: drf-spectacular matches exact classes, so simplejwt's descriptions are named for ours.
class TokenObtainPairSchema(TokenObtainPairSerializerExtension):
    target_class = "polaris.api.auth_tokens.TokenObtainPairSerializer"


class TokenRefreshSchema(TokenRefreshSerializerExtension):
    target_class = "polaris.api.auth_tokens.TokenRefreshSerializer"
