"""``AuditEntry``: one configuration or access change — who, when, what, from what to what. Append-only."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnly(Exception):
    """Raised on an attempt to change or delete audit entries through the ORM."""


class AuditEntryQuerySet(models.QuerySet):
    """No ``update()`` or ``delete()``: entries are only ever added (the database refuses them too)."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Audit entries are append-only.")

    def delete(self) -> NoReturn:
        raise AppendOnly("Audit entries are append-only.")

    # bulk_update goes through update(); refused with it.


class AuditEntry(models.Model):
    """One change to configuration or access, recorded by ``polaris.audit.services.audit_record`` in the
    transaction of the change itself (so the entry exists exactly when the change does).

    ``actor`` is ``SET_NULL`` with ``actor_username`` kept, so removing a user never removes what they
    did; ``agency`` scopes the entry for a supervisor's reading (``None``: global configuration).
    ``before``/``after`` are the changed object's recorded fields; secrets never appear in them.
    Rows are append-only: the model refuses ``save()`` of an existing row and ``delete()``, the queryset
    refuses ``update()``/``delete()``, and a database trigger refuses ``UPDATE``/``DELETE`` (except the
    foreign keys' ``SET NULL``, and a rewrite an erasure or the retention opens with
    ``audit_rewrite_allow``).
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True, help_text="Kept if the user goes.")
    agency = models.ForeignKey(
        "accounts.Agency", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64, help_text="e.g. trigger.created, webhook_endpoint.rotated")
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ("-at", "-id")
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["-at", "-id"], name="audit_at_idx"),
            models.Index(fields=["agency", "-at"], name="audit_agency_at_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            models.Index(fields=["actor", "-at"], name="audit_actor_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_username or 'system'} {self.action} {self.object_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Audit entries are append-only.")
