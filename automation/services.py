"""Automation writes outside the engine: triggers (alerts: ``automation.alerts``; webhook endpoints and
redelivery: ``automation.webhooks.endpoints``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from polaris.access import require_manager
from polaris.audit.services import audit_record, audit_snapshot
from polaris.errors import NotFound, ValidationFailed

from .models import Trigger, TriggerExecution, WebhookEndpoint
from .rules import trigger_validate
from .ruleset import ruleset_invalidate
from .timers import timers_resnapshot


def trigger_errors(trigger: Trigger) -> dict[str, list[str]]:
    """Everything wrong with an unsaved ``trigger``, by field: the model's field checks, the trigger
    rules, then uniqueness of the fields that passed (the order ``Model.full_clean()`` reports in)."""
    errors: dict[str, list[str]] = {}
    try:
        trigger.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors = exc.message_dict
    rules = trigger_validate(
        event_type=trigger.event_type,
        predicate=trigger.predicate,
        actions=trigger.actions,
        wait_minutes=trigger.wait_minutes,
        unless=trigger.unless,
    )
    for field, problems in rules.items():
        errors.setdefault(field, []).extend(problems)
    if problems := _endpoints_of_other_agencies(trigger):
        errors.setdefault("actions", []).extend(problems)
    try:
        trigger.validate_unique(exclude=set(errors))
        trigger.validate_constraints(exclude=set(errors))
    except ValidationError as exc:
        for field, problems in exc.message_dict.items():
            errors.setdefault(field, []).extend(problems)
    return errors


def _endpoints_of_other_agencies(trigger: Trigger) -> list[str]:
    """A trigger of one agency may send only to that agency's endpoints or global ones."""
    if trigger.agency_id is None or not isinstance(trigger.actions, list):
        return []
    named = {
        action["params"]["endpoint"]
        for action in trigger.actions
        if isinstance(action, dict)
        and action.get("type") == "webhook"
        and isinstance(action.get("params"), dict)
        and isinstance(action["params"].get("endpoint"), int)
    }
    foreign = sorted(
        WebhookEndpoint.objects.filter(pk__in=named, agency__isnull=False)
        .exclude(agency_id=trigger.agency_id)
        .values_list("pk", flat=True)
    )
    return [f"webhook endpoint {pk} belongs to another agency" for pk in foreign]


def trigger_snapshot(trigger: Trigger) -> dict[str, Any]:
    """What the audit log records of a trigger."""
    return audit_snapshot(trigger, (*TRIGGER_FIELDS, "version"))


@transaction.atomic
def trigger_create(
    *,
    name: str,
    event_type: str,
    predicate: str = "",
    actions: list[dict[str, Any]] | None = None,
    position: int = 100,
    enabled: bool = True,
    description: str = "",
    agency_id: Any = None,
    wait_minutes: int | None = None,
    wait_calendar_id: int | None = None,
    unless: list[str] | None = None,
    actor: Any = None,
) -> Trigger:
    """Create a trigger after the same validation the admin form runs (predicate and action params);
    recorded in the audit log as ``actor``'s (``None``: the system), who must manage ``agency_id``."""
    require_manager(actor, agency_id=agency_id)
    trigger = Trigger(
        name=name,
        event_type=event_type,
        predicate=predicate,
        actions=actions or [],
        position=position,
        enabled=enabled,
        description=description,
        agency_id=agency_id,
        wait_minutes=wait_minutes,
        wait_calendar_id=wait_calendar_id,
        unless=unless or [],
    )
    errors = trigger_errors(trigger)
    if errors:
        raise ValidationFailed(details=errors) from None
    trigger.save()
    audit_record(actor=actor, action="trigger.created", obj=trigger, after=trigger_snapshot(trigger))
    return trigger


TRIGGER_FIELDS = (
    "name",
    "description",
    "event_type",
    "predicate",
    "actions",
    "position",
    "enabled",
    "agency_id",
    "wait_minutes",
    "wait_calendar_id",
    "unless",
)


@transaction.atomic
def trigger_update(*, trigger_id: int, changes: dict[str, Any], actor: Any = None) -> Trigger:
    """Change some of a trigger's fields (validated as a whole); the version goes up by one.

    The trigger's pending timers keep their due time but take on its new ``unless`` list."""
    trigger = Trigger.objects.select_for_update().get(pk=trigger_id)
    before = trigger_snapshot(trigger)
    require_manager(actor, agency_id=trigger.agency_id)
    if "agency_id" in changes:
        require_manager(actor, agency_id=changes["agency_id"])
    unknown = set(changes) - set(TRIGGER_FIELDS)
    if unknown:
        raise ValidationFailed(details={name: ["Not a trigger field."] for name in sorted(unknown)})
    for name, value in changes.items():
        setattr(trigger, name, value)
    if trigger.unless is None:
        trigger.unless = []
    errors = trigger_errors(trigger)
    if errors:
        raise ValidationFailed(details=errors) from None
    trigger.version += 1
    trigger.save()
    if "unless" in changes:
        timers_resnapshot(trigger=trigger)
    trigger.refresh_from_db()
    action = "trigger.updated"
    if set(changes) == {"enabled"} and before["enabled"] != trigger.enabled:
        action = "trigger.enabled" if trigger.enabled else "trigger.disabled"
    audit_record(actor=actor, action=action, obj=trigger, before=before, after=trigger_snapshot(trigger))
    return trigger


@transaction.atomic
def trigger_delete(*, trigger_id: int, actor: Any = None) -> None:
    """Delete a trigger and its timers; its execution log stays (each row keeps the trigger's name)."""
    trigger = Trigger.objects.select_for_update().filter(pk=trigger_id).first()
    if trigger is None:
        raise NotFound("Trigger not found.")
    before = trigger_snapshot(trigger)
    require_manager(actor, agency_id=trigger.agency_id)
    # One statement rather than the collector's SET NULL: the name goes with it.
    TriggerExecution.objects.filter(trigger_id=trigger.pk).update(trigger=None, trigger_name=trigger.name)
    trigger.delete()
    audit_record(actor=actor, action="trigger.deleted", obj=trigger, object_id=trigger_id, before=before)


def trigger_admin_saved(*, trigger: Trigger, before: dict[str, Any] | None, actor: Any) -> None:
    """Record an admin form's save of ``trigger`` (``before``: ``None`` for a creation)."""
    after = trigger_snapshot(trigger)
    if before is None:
        audit_record(actor=actor, action="trigger.created", obj=trigger, after=after)
    elif after != before:
        audit_record(actor=actor, action="trigger.updated", obj=trigger, before=before, after=after)


def trigger_version_bump(*, trigger: Trigger) -> None:
    """Admin saves: every change bumps the version (the change form and the list's editable rows)."""
    trigger.version = (trigger.version or 0) + 1


@transaction.atomic
def triggers_set_enabled(*, trigger_ids: list[int], enabled: bool, actor: Any = None) -> int:
    """Enable or disable triggers; returns how many changed (each one's version goes up)."""
    changing = list(Trigger.objects.select_for_update().filter(pk__in=trigger_ids).exclude(enabled=enabled))
    changed = Trigger.objects.filter(pk__in=[t.pk for t in changing]).update(
        enabled=enabled, updated_at=timezone.now(), version=F("version") + 1
    )
    for trigger in changing:
        audit_record(
            actor=actor,
            action="trigger.enabled" if enabled else "trigger.disabled",
            obj=trigger,
            before={"enabled": not enabled, "version": trigger.version},
            after={"enabled": enabled, "version": trigger.version + 1},
        )
    ruleset_invalidate()  # update() sends no post_save
    return changed
