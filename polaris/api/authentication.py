"""JWT authentication (simplejwt) with the user read by a precompiled statement.

Every API request resolves its token's user; simplejwt's ``objects.get`` spends more time compiling the
query than the query takes (see ``polaris.statements``). The checks are simplejwt's own: the user exists,
is active, and (when ``CHECK_REVOKE_TOKEN`` is on) the token predates no password change; then ours: the
token's version is the user's ``token_version`` (``polaris.api.auth_tokens``), so a password, role or
active change refuses every earlier access token at once. The version is a column of the row read anyway,
so the check costs one comparison.
"""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication as SimpleJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from polaris.sql.precompiled import row_get

from .auth_tokens import TokenRevoked, token_version_current


class JWTAuthentication(SimpleJWTAuthentication):
    def get_user(self, validated_token: Token) -> Any:
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        try:
            user = row_get(get_user_model(), where={api_settings.USER_ID_FIELD: user_id})
        except (TypeError, ValueError):  # a claim of the wrong type: no such user
            user = None
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
        if not token_version_current(validated_token, user):
            raise TokenRevoked()
        return user


class JWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme: simplejwt's bearer JWT (drf-spectacular matches exact classes)."""

    target_class = "polaris.api.authentication.JWTAuthentication"
