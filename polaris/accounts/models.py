import uuid
from typing import ClassVar

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
    """A person using Polaris: an admin, an agency supervisor or agent, or a client served by an agency."""

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
        help_text="Required for agency agents and supervisors; for clients, the agency that serves them.",
    )

    objects: ClassVar[UserManager] = UserManager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(role__in=["agency", "supervisor"]) | models.Q(agency__isnull=False),
                name="agency_user_has_agency",
            ),
        ]

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
