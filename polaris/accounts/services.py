from django.db import transaction
from django.utils.text import slugify

from .models import Agency, ClientAgencyLink, User


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

    Admins also get Django admin access (``is_staff``/``is_superuser``); nobody else does. A client
    registered with an agency is linked to it (``ClientAgencyLink``: the agency serves them).
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
    user.set_password(password)
    user.save()
    client_home_link_ensure(client=user)
    return user, created


def client_home_link_ensure(*, client: User, actor: User | None = None) -> None:
    """A client registered with an agency is served by it: link them (idempotent; nothing for others).

    Registration, not a change of who serves whom: no event (those come with ``ClientLinked``, from the
    workflow's link service)."""
    if client.is_client_role and client.agency_id is not None:
        ClientAgencyLink.objects.get_or_create(
            client=client, agency_id=client.agency_id, defaults={"created_by": actor}
        )
