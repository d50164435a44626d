"""Account writes: agencies and users (idempotent upserts for seeding). Every change of a user's role,
agency or access is recorded in the audit log (``polaris.audit``), in the same transaction."""

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from polaris.audit.services import audit_record, audit_snapshot
from polaris.errors import DomainError

from .models import Agency, ClientAgencyLink, User

# What the audit log records of a user: access, never the password or personal details.
USER_AUDITED = ("username", "role", "agency_id", "is_active", "is_staff", "is_superuser")


def user_snapshot(user: User) -> dict[str, Any]:
    return audit_snapshot(user, USER_AUDITED)


def user_audit(*, user: User, before: dict[str, Any] | None, actor: Any) -> None:
    """Record a user's creation or change of access (``before``: ``None`` for a creation); nothing when
    nothing recorded changed (passwords are never recorded)."""
    after = user_snapshot(user)
    if before is None:
        audit_record(actor=actor, action="user.created", obj=user, after=after)
    elif after != before:
        action = "user.role_changed" if before.get("role") != after["role"] else "user.updated"
        audit_record(actor=actor, action=action, obj=user, before=before, after=after)


class InvalidRefreshToken(DomainError):
    error_code = "INVALID_TOKEN"
    status_code = 400
    default_message = "The refresh token is invalid, expired or already revoked."


@transaction.atomic
def agency_get_or_create(*, name: str, actor: Any = None) -> Agency:
    agency, created = Agency.objects.get_or_create(slug=slugify(name)[:100], defaults={"name": name})
    if created:
        audit_record(
            actor=actor,
            action="agency.created",
            obj=agency,
            agency_id=agency.pk,
            after={"name": agency.name, "slug": agency.slug},
        )
    return agency


@transaction.atomic
def user_upsert(
    *,
    username: str,
    password: str,
    role: str,
    agency: Agency | None = None,
    email: str = "",
    actor: Any = None,
) -> tuple[User, bool]:
    """Create the user, or bring an existing one to the given role, agency and password (idempotent).

    Admins also get Django admin access (``is_staff``/``is_superuser``, which ``User.save`` derives from the
    role); nobody else does. A changed password or role revokes the user's tokens (``token_version``). A
    client registered with an agency is linked to it (``ClientAgencyLink``: the agency serves them).
    """
    if role not in User.Role.values:
        raise ValueError(f"Unknown role {role!r}; expected one of {', '.join(User.Role.values)}.")
    if role in User.STAFF_ROLES and agency is None:
        raise ValueError(f"A user with role {role!r} needs an agency.")
    is_admin = role == User.Role.ADMIN
    user, created = User.objects.select_for_update().get_or_create(username=username)
    before = None if created else user_snapshot(user)
    user.role = role
    user.agency = agency
    user.email = email or user.email
    user.is_staff = is_admin
    user.is_superuser = is_admin
    if not user.check_password(password):  # an unchanged password keeps the user's tokens valid
        user.set_password(password)
    user.save()
    client_home_link_ensure(client=user)
    user_audit(user=user, before=before, actor=actor)
    return user, created


def client_home_link_ensure(*, client: User, actor: User | None = None) -> None:
    """A client registered with an agency is served by it: link them (idempotent; nothing for others).

    Registration, not a change of who serves whom: no event (those come with ``ClientLinked``, from the
    workflow's link service)."""
    if client.is_client_role and client.agency_id is not None:
        ClientAgencyLink.objects.get_or_create(
            client=client, agency_id=client.agency_id, defaults={"created_by": actor}
        )


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
