import uuid
from collections.abc import Collection
from typing import Any, ClassVar, Self

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models


class Agency(models.Model):
    """An organisation whose agents serve clients; the unit of tenancy."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "agencies"
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class UserManager(DjangoUserManager):
    """Django's, except that a superuser (``createsuperuser``) is an admin for the API as well."""

    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.setdefault("role", "admin")
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person using Polaris: an admin, an agency supervisor or agent, or a client.

    A client is served by the agencies it is linked to (``ClientAgencyLink``); its ``agency`` column is
    only the agency it was registered with (a link to it is created with the user)."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        SUPERVISOR = "supervisor", "Agency supervisor"
        AGENCY = "agency", "Agency agent"
        CLIENT = "client", "Client"

    # The roles that work for one agency (and must name it): its agents and its supervisors.
    STAFF_ROLES = (Role.SUPERVISOR, Role.AGENCY)

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CLIENT)
    agency = models.ForeignKey(
        Agency,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
        help_text=(
            "Required for agency agents and supervisors; for clients, the agency they were registered "
            "with (the agencies that serve them are their links)."
        ),
    )

    # Bumped whenever the password, the role or is_active changes; every JWT carries the version it was
    # issued under ("ver") and is refused once it is behind (polaris/api/authentication.py).
    token_version = models.PositiveIntegerField(default=0, editable=False)

    objects: ClassVar[UserManager] = UserManager()

    # What a token's validity rests on: a change to any of these revokes every token of the user.
    TOKEN_FIELDS = ("password", "role", "is_active")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(role__in=["agency", "supervisor"]) | models.Q(agency__isnull=False),
                name="agency_user_has_agency",
            ),
        ]
        # An agency's staff without its clients' rows (a routing decision reads them all; clients are
        # most of an agency's users). Partial: only staff rows, and no other read of users is drawn to it.
        indexes = [
            models.Index(
                fields=["agency"],
                condition=models.Q(role__in=["supervisor", "agency"]),
                name="user_agency_staff_idx",
            )
        ]

    @classmethod
    def from_db(
        cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any
    ) -> Self:
        user = super().from_db(db, field_names, values, **kwargs)
        user._token_state = user._current_token_state()
        return user

    def _current_token_state(self) -> tuple[Any, ...]:
        return tuple(self.__dict__.get(name) for name in self.TOKEN_FIELDS)

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Admin rights follow the role, and tokens follow the password, the role and ``is_active``.

        Done here, on save, because it is the one place every writer passes through: the services, the
        admin's user and password forms, ``changepassword``/``createsuperuser``, a shell. (A queryset
        ``update()`` bypasses it; the admin site checks the role itself at every request, and nothing in
        the project changes these fields with ``update()``.)"""
        is_admin = self.role == self.Role.ADMIN
        changed_flags = {name for name in ("is_staff", "is_superuser") if getattr(self, name) != is_admin}
        self.is_staff = self.is_superuser = is_admin
        update_fields = kwargs.get("update_fields")
        saved = set(self.TOKEN_FIELDS if update_fields is None else update_fields)
        previous = getattr(self, "_token_state", None)
        current = self._current_token_state()
        # A first password (the row had none, so no token could have been issued) revokes nothing.
        revoked = previous is not None and any(
            before != after and name in saved and not (name == "password" and not before)
            for name, before, after in zip(self.TOKEN_FIELDS, previous, current, strict=True)
        )
        if revoked:
            self.token_version += 1
        if update_fields is not None:
            kwargs["update_fields"] = {
                *update_fields,
                *changed_flags,
                *(["token_version"] if revoked else []),
            }
        super().save(*args, **kwargs)
        if previous is None or update_fields is None:
            self._token_state = current
        else:  # only what was written is now the stored state
            self._token_state = tuple(
                after if name in saved else before
                for name, before, after in zip(self.TOKEN_FIELDS, previous, current, strict=True)
            )

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """Django's model permissions are the admin role's only: the role is the authorization model, so
        a permission granted to anyone else (``user_permissions``, a group, a stale ``is_superuser``)
        opens nothing. The admin site admits supervisors, and this keeps every model admin that does not
        open itself to them explicitly closed (``polaris.accounts.admin_site``)."""
        return self.is_admin_role and super().has_perm(perm, obj)

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_admin_role and super().has_module_perms(app_label)

    @property
    def is_admin_role(self) -> bool:
        return self.role == self.Role.ADMIN

    @property
    def is_agency_role(self) -> bool:
        """Agency staff: an agent or a supervisor (a supervisor does everything an agent does)."""
        return self.role in self.STAFF_ROLES

    @property
    def is_supervisor_role(self) -> bool:
        return self.role == self.Role.SUPERVISOR

    @property
    def is_client_role(self) -> bool:
        return self.role == self.Role.CLIENT


# The namespace of the ``client`` aggregate's ids: a client's events (links, erasure) form one stream
# keyed by a UUID derived from the user's integer id (the outbox keys aggregates by UUID).
CLIENT_AGGREGATE_NAMESPACE = uuid.UUID("6f1c2a7e-3b1d-4c55-9a51-0c2f6a1b7d10")


def client_aggregate_id(client_id: int) -> uuid.UUID:
    """The ``aggregate_id`` of client ``client_id``'s event stream (stable, derived from the user id)."""
    return uuid.uuid5(CLIENT_AGGREGATE_NAMESPACE, f"client:{client_id}")


class ClientAgencyLink(models.Model):
    """An agency serves a client: it sees the client and may create work for them. A client may be
    served by several agencies; an agency sees and creates work only for the clients it is linked to."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(User, on_delete=models.CASCADE, related_name="agency_links")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="client_links")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "agency"], name="client_agency_link_uniq"),
        ]
        # Scoping asks "is this client linked to that agency" and "which clients does this agency serve".
        indexes = [models.Index(fields=["agency", "client"], name="client_link_agency_idx")]

    def __str__(self) -> str:
        return f"{self.client_id} ↔ {self.agency_id}"
