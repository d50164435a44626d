"""Reads of plan templates in the caller's scope: admins every agency's, agency staff their own agency's
(supervisors manage them; agents read them to make plans), clients none (403). Out of scope is 404."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from polaris.access import agency_scope, manager_scope
from polaris.accounts.models import User
from polaris.errors import NotFound

from .models import PlanMigration, PlanTemplate, PlanTemplateVersion, TemplatedPlan

MAX_BIGINT = 2**63 - 1


def _pk(value: Any) -> int:
    try:
        pk = int(str(value))
    except (TypeError, ValueError):
        raise NotFound("Plan template not found.") from None
    if not 0 < pk <= MAX_BIGINT:
        raise NotFound("Plan template not found.")
    return pk


def plan_template_list(*, user: User | None, filters: dict[str, Any] | None = None) -> QuerySet[PlanTemplate]:
    """The templates ``user`` may read, by name; ``filters``: ``agency``, ``search`` (in the name)."""
    templates = PlanTemplate.objects.all()
    scope = agency_scope(user, "Plan templates are for administrators and agency staff.")
    if scope is not None:
        templates = templates.filter(agency_id=scope)
    filters = filters or {}
    if filters.get("agency"):
        templates = templates.filter(agency_id=filters["agency"])
    if filters.get("search"):
        templates = templates.filter(name__icontains=filters["search"])
    return templates.order_by("name", "id")


def plan_template_get(
    *, user: User | None, template_id: Any, manage: bool = False, for_update: bool = False
) -> PlanTemplate:
    """One template in scope (``manage``: the caller must manage its agency, else 403 for an agent).
    ``for_update`` locks its row until the transaction ends."""
    pk = _pk(template_id)
    templates = plan_template_list(user=user)
    if for_update:
        templates = templates.select_for_update()
    try:
        template = templates.get(pk=pk)
    except PlanTemplate.DoesNotExist:
        raise NotFound("Plan template not found.") from None
    if manage:
        scope = manager_scope(user, "Only administrators and the agency's supervisors manage plan templates.")
        assert scope is None or scope == template.agency_id  # in scope, hence their agency's
    return template


def plan_template_version(*, template: PlanTemplate, number: int | None = None) -> PlanTemplateVersion:
    """A version of ``template`` (default: its latest); a missing one is 404."""
    try:
        return template.versions.get(number=template.latest_version if number is None else number)
    except PlanTemplateVersion.DoesNotExist:
        raise NotFound(f"Template version {number} not found.") from None


def plan_template_versions_in_use(template_ids: list[int]) -> set[int]:
    """Ids of the versions of these templates that some plan was made from (or moved to)."""
    return set(
        TemplatedPlan.objects.filter(version__template_id__in=template_ids)
        .values_list("version_id", flat=True)
        .distinct()
    )


def plan_migration_list(*, template: PlanTemplate) -> QuerySet[PlanMigration]:
    return template.migrations.all()
