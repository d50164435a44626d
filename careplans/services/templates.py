"""Plan template writes: create, change (the latest version only while no plan uses it), add a version.

Admins manage every agency's templates, a supervisor their own agency's (``polaris.access.require_manager``);
every change is audited (``audit_record``) in its own transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from polaris.access import require_manager
from polaris.accounts.models import Agency, User
from polaris.audit.services import audit_record
from polaris.errors import ValidationFailed
from workflow.services.approvals import approval_policy_validate

from ..blueprints import blueprints_clean
from ..errors import TemplateVersionInUse
from ..models import PlanTemplate, PlanTemplateVersion, TemplatedPlan
from ..selectors import plan_template_get, plan_template_version

NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 10000
TEMPLATE_FIELDS = ("name", "description")
VERSION_FIELDS = ("blueprints", "requires_approval")


def _snapshot(template: PlanTemplate, version: PlanTemplateVersion) -> dict[str, Any]:
    return {
        "name": template.name,
        "description": template.description,
        "agency_id": str(template.agency_id),
        "version": version.number,
        "blueprints": version.blueprints,
        "requires_approval": version.requires_approval,
    }


def _name_clean(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed(details={"name": [f"1 to {NAME_MAX_LENGTH} characters."]})
    return name.strip()


def _policy_clean(raw: Any, *, agency_id: Any) -> dict[str, Any] | None:
    """The approval policy as plans take it (the workflow's one validator; errors under
    ``requires_approval``): its approvers must be admins or staff of the agency."""
    return approval_policy_validate(raw, agency_id, field="requires_approval")


@transaction.atomic
def plan_template_create(
    *,
    actor: User | None,
    agency: Agency,
    name: str,
    blueprints: Any,
    description: str = "",
    requires_approval: Any = None,
) -> PlanTemplate:
    """A template with its version 1 (``ValidationFailed``/``DependencyCycle`` for bad blueprints)."""
    require_manager(actor, agency_id=agency.pk)
    template = PlanTemplate.objects.create(
        agency=agency,
        name=_name_clean(name),
        description=(description or "")[:DESCRIPTION_MAX_LENGTH],
        created_by=actor,
    )
    version = PlanTemplateVersion.objects.create(
        template=template,
        number=1,
        blueprints=blueprints_clean(blueprints),
        requires_approval=_policy_clean(requires_approval, agency_id=agency.pk),
        created_by=actor,
    )
    audit_record(
        actor=actor, action="plan_template.created", obj=template, after=_snapshot(template, version)
    )
    return template


@transaction.atomic
def plan_template_update(*, actor: User | None, template_id: Any, changes: dict[str, Any]) -> PlanTemplate:
    """Change the name/description, and/or the latest version's blueprints and approval policy.

    The version's row is locked first: an instantiation that made a plan from it meanwhile has committed
    (its link row key-shares the version) before the in-use check reads, so a used version never changes
    (``TemplateVersionInUse``, 409)."""
    template = plan_template_get(user=actor, template_id=template_id, manage=True, for_update=True)
    if unknown := sorted(set(changes) - {*TEMPLATE_FIELDS, *VERSION_FIELDS}):
        raise ValidationFailed(details={field: ["This field cannot be changed."] for field in unknown})
    version = PlanTemplateVersion.objects.select_for_update().get(
        pk=plan_template_version(template=template).pk
    )
    before = _snapshot(template, version)
    if "name" in changes:
        template.name = _name_clean(changes["name"])
    if "description" in changes:
        template.description = str(changes["description"] or "")[:DESCRIPTION_MAX_LENGTH]
    if set(changes) & set(VERSION_FIELDS):
        if TemplatedPlan.objects.filter(version=version).exists():
            raise TemplateVersionInUse(details={"version": version.number})
        if "blueprints" in changes:
            version.blueprints = blueprints_clean(changes["blueprints"])
        if "requires_approval" in changes:
            version.requires_approval = _policy_clean(
                changes["requires_approval"], agency_id=template.agency_id
            )
        version.save(update_fields=list(VERSION_FIELDS))
    template.save()
    after = _snapshot(template, version)
    if after != before:
        audit_record(actor=actor, action="plan_template.updated", obj=template, before=before, after=after)
    return template


@transaction.atomic
def plan_template_version_create(
    *, actor: User | None, template_id: Any, blueprints: Any, requires_approval: Any = None
) -> PlanTemplateVersion:
    """The template's next version (it becomes the one new plans are made from)."""
    template = plan_template_get(user=actor, template_id=template_id, manage=True, for_update=True)
    previous = plan_template_version(template=template)
    version = PlanTemplateVersion.objects.create(
        template=template,
        number=template.latest_version + 1,
        blueprints=blueprints_clean(blueprints),
        requires_approval=_policy_clean(requires_approval, agency_id=template.agency_id),
        created_by=actor,
    )
    template.latest_version = version.number
    template.save(update_fields=["latest_version", "updated_at"])
    audit_record(
        actor=actor,
        action="plan_template.version_created",
        obj=template,
        before=_snapshot(template, previous),
        after=_snapshot(template, version),
    )
    return version
