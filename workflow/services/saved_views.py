"""Saved views: create, change, delete (``workflow.saved_views``); their eraser.

Who may change a view: its owner, an admin, or a supervisor of the agency a shared view is shared with.
A colleague who only sees a shared view gets 403; anyone who cannot see it, 404. Changes to shared views
(creating one, sharing or unsharing, editing or deleting one) are audited: they change what colleagues
see. A private view is one person's bookmark and is not; the audit entry records the filter's search text
as a digest (``polaris.erasure.text_digest``), since a search may name a client.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q

from polaris.access import agency_scope, is_admin, is_supervisor
from polaris.accounts.models import User
from polaris.audit.models import AuditEntry
from polaris.audit.services import audit_record, audit_rewrite_allow
from polaris.erasure import ERASED, text_digest
from polaris.errors import PermissionDenied
from workflow.errors import SavedViewLimitReached, SavedViewNameTaken
from workflow.saved_views import SAVED_VIEWS_PER_OWNER, SavedView
from workflow.selectors import SAVED_VIEWS_MESSAGE, saved_view_get

SAVED_VIEW_FIELDS = ("name", "filter", "shared")


def saved_view_snapshot(view: SavedView) -> dict[str, Any]:
    """What the audit log records of a view (its search text as a digest)."""
    filters = dict(view.filter or {})
    if isinstance(filters.get("search"), str):
        filters["search"] = text_digest(filters["search"])
    return {
        "name": view.name,
        "filter": filters,
        "shared": view.shared,
        "owner_id": view.owner_id,
        "agency_id": None if view.agency_id is None else str(view.agency_id),
    }


def may_change_saved_view(view: SavedView, user: User | None) -> bool:
    """Its owner, an admin, or a supervisor of the agency a shared view is shared with."""
    if is_admin(user) or (user is not None and view.owner_id == user.pk):
        return True
    return view.shared and is_supervisor(user) and user is not None and view.agency_id == user.agency_id


def _owner_lock(owner_id: int) -> None:
    # One person's creations and renames take turns: the cap and the unique name hold under concurrency.
    User.objects.select_for_update().filter(pk=owner_id).values_list("pk", flat=True).first()


def _name_free(*, owner_id: int, name: str, exclude: Any = None) -> None:
    taken = SavedView.objects.filter(owner_id=owner_id, name=name).exclude(pk=exclude).exists()
    if taken:
        raise SavedViewNameTaken(details={"name": [f"You already have a view named {name!r}."]})


@transaction.atomic
def saved_view_create(*, actor: User, name: str, filter: dict[str, Any], shared: bool = False) -> SavedView:
    """A view of ``actor``'s (staff only; ``filter`` already validated by the list's parser), shared with
    their agency when ``shared``."""
    agency_scope(actor, SAVED_VIEWS_MESSAGE)
    _owner_lock(actor.pk)
    if SavedView.objects.filter(owner_id=actor.pk).count() >= SAVED_VIEWS_PER_OWNER:
        raise SavedViewLimitReached(details={"limit": SAVED_VIEWS_PER_OWNER})
    _name_free(owner_id=actor.pk, name=name)
    view = SavedView.objects.create(
        owner=actor, agency_id=actor.agency_id, name=name, filter=filter, shared=shared
    )
    if view.shared:
        audit_record(actor=actor, action="saved_view.created", obj=view, after=saved_view_snapshot(view))
    return view


@transaction.atomic
def saved_view_update(*, actor: User, view_id: Any, changes: dict[str, Any]) -> SavedView:
    """Change some of ``name``, ``filter``, ``shared`` (404 out of sight, 403 in sight but not yours)."""
    view = saved_view_get(user=actor, view_id=view_id)
    if not may_change_saved_view(view, actor):
        raise PermissionDenied(
            "Only the view's owner, an administrator or the agency's supervisors may change it."
        )
    if "name" in changes:
        _owner_lock(view.owner_id)
    view = SavedView.objects.select_for_update().get(pk=view.pk)
    before = saved_view_snapshot(view)
    if "name" in changes and changes["name"] != view.name:
        _name_free(owner_id=view.owner_id, name=changes["name"], exclude=view.pk)
    for name in SAVED_VIEW_FIELDS:
        if name in changes:
            setattr(view, name, changes[name])
    view.save()
    after = saved_view_snapshot(view)
    if (before["shared"] or view.shared) and after != before:
        action = "saved_view.updated"
        if before["shared"] != view.shared:
            action = "saved_view.shared" if view.shared else "saved_view.unshared"
        audit_record(actor=actor, action=action, obj=view, before=before, after=after)
    return view


@transaction.atomic
def saved_view_delete(*, actor: User, view_id: Any) -> None:
    view = saved_view_get(user=actor, view_id=view_id)
    if not may_change_saved_view(view, actor):
        raise PermissionDenied(
            "Only the view's owner, an administrator or the agency's supervisors may delete it."
        )
    before = saved_view_snapshot(view)
    pk = view.pk
    view.delete()
    if before["shared"]:
        audit_record(actor=actor, action="saved_view.deleted", obj=view, object_id=pk, before=before)


def saved_views_erase(*, client_id: int, dry_run: bool) -> int:
    """Erasure (``polaris.erasure``): a view's name or search text that contains the client's first name,
    last name or username (3+ characters, case-insensitive) becomes ``[erased]`` (the name keeps a short
    id, names being unique per owner), in the view and in the audit entries of shared views (deleted ones
    included; their search text is a digest already). A view's ``client`` id filter is not personal data
    and stays. Counts the views and entries that change."""
    client = User.objects.filter(pk=client_id).values("first_name", "last_name", "username").first()
    if client is None:
        return 0
    words = {str(value) for value in client.values() if value and len(str(value)) >= 3}
    if not words:
        return 0
    named = Q()
    audited = Q()
    for word in words:
        named |= Q(name__icontains=word) | Q(filter__search__icontains=word)
        audited |= Q(before__name__icontains=word) | Q(after__name__icontains=word)
    entries = AuditEntry._base_manager.filter(audited, object_type=SavedView._meta.model_name)
    if dry_run:
        return SavedView.objects.filter(named).count() + entries.count()
    erased_entries = _audit_names_erase(list(entries), {word.lower() for word in words})
    views = list(SavedView.objects.filter(named).select_for_update())
    for view in views:
        lowered = {word.lower() for word in words}
        if any(word in view.name.lower() for word in lowered):
            view.name = f"{ERASED} {str(view.pk)[:8]}"
        search = (view.filter or {}).get("search")
        if isinstance(search, str) and any(word in search.lower() for word in lowered):
            view.filter = {**view.filter, "search": ERASED}
        view.save(update_fields=["name", "filter", "updated_at"])
    return len(views) + erased_entries


def _audit_names_erase(entries: list[AuditEntry], lowered: set[str]) -> int:
    """Rewrite the view names in these audit entries' snapshots that contain one of ``lowered``."""
    if not entries:
        return 0
    audit_rewrite_allow()
    for entry in entries:
        for side in (entry.before, entry.after):
            if not isinstance(side, dict):
                continue
            name = side.get("name")
            if isinstance(name, str) and any(word in name.lower() for word in lowered):
                side["name"] = f"{ERASED} {entry.object_id[:8]}"
        AuditEntry._base_manager.filter(pk=entry.pk).update(before=entry.before, after=entry.after)
    return len(entries)
