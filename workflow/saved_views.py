"""Saved views: a named task-list filter a staff member keeps for themselves or shares with their agency.

A view stores the ``filter`` object as it was given (validated by the list's own parser,
``workflow.api.filters``) and is run as whoever opens it: their scope, and ``assignee: "me"`` is them.
So a shared view never shows a colleague more than their own list would.
"""

import uuid

from django.conf import settings
from django.db import models

SAVED_VIEW_NAME_MAX_LENGTH = 100
# Views one person may keep: they are configuration, not data, and every list of them is one page.
SAVED_VIEWS_PER_OWNER = 100


class SavedView(models.Model):
    """A task-list filter with a name, private to ``owner`` or ``shared`` with ``agency`` (the owner's
    agency when it was created; ``None`` for an admin without one: shared with admins only)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    agency = models.ForeignKey(
        "accounts.Agency", null=True, blank=True, on_delete=models.CASCADE, related_name="saved_views"
    )
    name = models.CharField(max_length=SAVED_VIEW_NAME_MAX_LENGTH)
    filter = models.JSONField(default=dict, blank=True)
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="saved_view_owner_name_uniq"),
        ]
        indexes = [
            # A colleague's list: the agency's shared views (the owner's own come from the unique index).
            models.Index(fields=["agency"], condition=models.Q(shared=True), name="saved_view_shared_idx"),
        ]

    def __str__(self) -> str:
        return self.name
