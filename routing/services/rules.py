"""Routing rule writes (admins any agency's; a supervisor their agency's), each audited in its transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from polaris.access import require_manager
from polaris.accounts.models import User
from polaris.audit.services import audit_record, audit_snapshot
from polaris.errors import ValidationFailed
from workflow.models import TaskPriority

from ..models import MAX_CANDIDATES, RoutingRule, RoutingStrategy
from ..selectors import rule_get, staff_of

RULE_FIELDS = (
    "name",
    "enabled",
    "order",
    "match_task_types",
    "match_service_areas",
    "match_priorities",
    "strategy",
    "use_skills",
    "client_affinity",
    "capacity",
)


def _snapshot(rule: RoutingRule) -> dict[str, Any]:
    values = audit_snapshot(rule, ("agency", *RULE_FIELDS))
    values["candidates"] = sorted(rule.candidates.values_list("id", flat=True))
    return values


def _check(agency_id: Any, values: dict[str, Any], candidates: list[int] | None) -> None:
    errors: dict[str, list[str]] = {}
    if "strategy" in values and values["strategy"] not in RoutingStrategy.values:
        errors["strategy"] = [f"Choose one of: {', '.join(RoutingStrategy.values)}."]
    bad = sorted(set(values.get("match_priorities") or ()) - set(TaskPriority.values))
    if bad:
        errors["match_priorities"] = [
            f"Unknown priorities {bad}; choose from {', '.join(TaskPriority.values)}."
        ]
    if candidates is not None:
        if len(candidates) > MAX_CANDIDATES:
            errors["candidates"] = [f"At most {MAX_CANDIDATES} candidates."]
        else:
            staff = set(staff_of(agency_id).filter(pk__in=candidates).values_list("id", flat=True))
            errors["candidates"] = [
                f"User {outsider} does not exist among the active staff of the rule's agency."
                for outsider in sorted(set(candidates) - staff)
            ]
            if not errors["candidates"]:
                del errors["candidates"]
    if errors:
        raise ValidationFailed(details=errors)


@transaction.atomic
def rule_create(
    *, actor: User | None, agency_id: Any, candidates: list[int] | None = None, **values: Any
) -> RoutingRule:
    """A new rule for ``agency_id`` (audited ``routing_rule.created``)."""
    require_manager(actor, agency_id=agency_id)
    if agency_id is None:
        # Only an admin has no agency to default to (the API's schema serves supervisors too).
        raise ValidationFailed(details={"agency": ["This field is required."]})
    _check(agency_id, values, candidates)
    rule = RoutingRule.objects.create(agency_id=agency_id, created_by=actor, **values)
    if candidates:
        rule.candidates.set(candidates)
    audit_record(actor=actor, action="routing_rule.created", obj=rule, after=_snapshot(rule))
    return rule


@transaction.atomic
def rule_update(
    *, actor: User | None, rule_id: Any, candidates: list[int] | None = None, **changes: Any
) -> RoutingRule:
    """Change a rule (audited ``routing_rule.updated`` with before and after)."""
    rule = rule_get(user=actor, rule_id=rule_id)
    rule = RoutingRule.objects.select_for_update().get(pk=rule.pk)
    _check(rule.agency_id, changes, candidates)
    before = _snapshot(rule)
    for name, value in changes.items():
        setattr(rule, name, value)
    rule.save()
    if candidates is not None:
        rule.candidates.set(candidates)
    audit_record(actor=actor, action="routing_rule.updated", obj=rule, before=before, after=_snapshot(rule))
    return rule


@transaction.atomic
def rule_delete(*, actor: User | None, rule_id: Any) -> None:
    """Delete a rule (audited ``routing_rule.deleted``); routed tasks keep their events."""
    rule = rule_get(user=actor, rule_id=rule_id)
    before = _snapshot(rule)
    audit_record(actor=actor, action="routing_rule.deleted", obj=rule, before=before)
    rule.delete()
