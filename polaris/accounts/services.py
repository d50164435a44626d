from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from polaris.errors import DomainError

from .models import Agency, User


class InvalidRefreshToken(DomainError):
    error_code = "INVALID_TOKEN"
    status_code = 400
    default_message = "The refresh token is invalid, expired or already revoked."


@transaction.atomic
def agency_get_or_create(*, name: str) -> Agency:
    agency, _ = Agency.objects.get_or_create(slug=slugify(name)[:100], defaults={"name": name})
    return agency


@transaction.atomic
def user_upsert(
    *,
    username: str,
    password: str,
    role: str,
    agency: Agency | None = None,
    email: str = "",
) -> tuple[User, bool]:
    """Create the user, or bring an existing one to the given role, agency and password (idempotent).

    Admins also get Django admin access (``is_staff``/``is_superuser``, which ``User.save`` derives from the
    role); nobody else does. A changed password or role revokes the user's tokens (``token_version``).
    """
    if role not in User.Role.values:
        raise ValueError(f"Unknown role {role!r}; expected one of {', '.join(User.Role.values)}.")
    if role in User.STAFF_ROLES and agency is None:
        raise ValueError(f"A user with role {role!r} needs an agency.")
    is_admin = role == User.Role.ADMIN
    user, created = User.objects.select_for_update().get_or_create(username=username)
    user.role = role
    user.agency = agency
    user.email = email or user.email
    user.is_staff = is_admin
    user.is_superuser = is_admin
    if not user.check_password(password):  # an unchanged password keeps the user's tokens valid
        user.set_password(password)
    user.save()
    return user, created


@transaction.atomic
def refresh_token_revoke(*, token: str) -> None:
    """Blacklist a refresh token (logout): it can no longer be refreshed. An invalid, expired or already
    revoked token is ``InvalidRefreshToken``."""
    try:
        RefreshToken(token).blacklist()  # type: ignore[arg-type]  # simplejwt types the encoded token as Token
    except TokenError as exc:
        raise InvalidRefreshToken() from exc


@transaction.atomic
def expired_tokens_purge() -> int:
    """Forget refresh tokens past their expiry (their blacklist entries go with them): an expired token is
    refused for its expiry alone. Returns how many were dropped."""
    deleted, _ = OutstandingToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted
