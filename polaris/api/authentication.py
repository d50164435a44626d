"""JWT authentication (simplejwt) with the user read by a precompiled statement.

Every API request resolves its token's user; simplejwt's ``objects.get`` spends more time compiling the
query than the query takes (see ``polaris.statements``). The checks are simplejwt's own: the user exists,
is active, and (when ``CHECK_REVOKE_TOKEN`` is on) the token predates no password change; then ours: the
token's version is the user's ``token_version`` (``polaris.api.auth_tokens``), so a password, role or
active change refuses every earlier access token at once. The version is a column of the row read anyway,
so the check costs one comparison.

A token's signature and claims are checked once per process: the validated token is kept (by its exact
bytes and the signing settings) until it expires, so a client's next requests with it skip PyJWT's decode
(a third of a task read's Python work). Expiry is checked on every request as simplejwt checks it (``exp``
plus the leeway); the user row, and with it revocation, is read on every request as before.
"""

import time
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

VALIDATED_TOKENS_KEPT = 4096  # per process; past it the cache starts over
_validated: dict[tuple, tuple[float, Token]] = {}


def _settings_key() -> tuple:
    """What a token's validity depends on besides its bytes: a changed key or claim rule is a new cache."""
    return (
        api_settings.SIGNING_KEY,
        api_settings.VERIFYING_KEY,
        api_settings.ALGORITHM,
        api_settings.AUDIENCE,
        api_settings.ISSUER,
        api_settings.LEEWAY,
        tuple(api_settings.AUTH_TOKEN_CLASSES),
    )


def _leeway_seconds() -> float:
    leeway = api_settings.LEEWAY
    return float(leeway.total_seconds() if hasattr(leeway, "total_seconds") else leeway or 0)


def token_kept(raw_token: bytes) -> Token | None:
    """The validated token for these bytes if this process checked them and it has not expired since."""
    kept = _validated.get((raw_token, _settings_key()))
    # Valid while now < exp + leeway: PyJWT's and simplejwt's own rule (``exp <= now - leeway`` expires).
    return kept[1] if kept is not None and time.time() < kept[0] else None


def user_checked(validated_token: Token, user: Any) -> Any:
    """``user`` (the row of the token's user, ``None``: none) if the token may act as them: simplejwt's
    checks, then the token version; ``AuthenticationFailed`` (or ``TokenRevoked``) otherwise."""
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


class JWTAuthentication(SimpleJWTAuthentication):
    def get_validated_token(self, raw_token: bytes) -> Token:
        if (kept := token_kept(raw_token)) is not None:
            return kept
        key = (raw_token, _settings_key())
        token = super().get_validated_token(raw_token)
        expires = token.payload.get("exp")
        if isinstance(expires, int | float) and "nbf" not in token.payload:
            if len(_validated) >= VALIDATED_TOKENS_KEPT:
                _validated.clear()
            _validated[key] = (float(expires) + _leeway_seconds(), token)
        return token

    def get_user(self, validated_token: Token) -> Any:
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        try:
            user = row_get(get_user_model(), where={api_settings.USER_ID_FIELD: user_id})
        except (TypeError, ValueError):  # a claim of the wrong type: no such user
            user = None
        return user_checked(validated_token, user)


class JWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme: simplejwt's bearer JWT (drf-spectacular matches exact classes)."""

    target_class = "polaris.api.authentication.JWTAuthentication"
