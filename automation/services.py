"""Automation writes outside the engine: triggers (alerts: ``automation.alerts``; webhook endpoints and
redelivery: ``automation.webhooks.endpoints``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from polaris.errors import NotFound, ValidationFailed

from .models import Trigger
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
    try:
        trigger.validate_unique(exclude=set(errors))
        trigger.validate_constraints(exclude=set(errors))
    except ValidationError as exc:
        for field, problems in exc.message_dict.items():
            errors.setdefault(field, []).extend(problems)
    return errors


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
) -> Trigger:
    """Create a trigger after the same validation the admin form runs (predicate and action params)."""
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
def trigger_update(*, trigger_id: int, changes: dict[str, Any]) -> Trigger:
    """Change some of a trigger's fields (validated as a whole); the version goes up by one.

    The trigger's pending timers keep their due time but take on its new ``unless`` list."""
    trigger = Trigger.objects.select_for_update().get(pk=trigger_id)
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
    return trigger


@transaction.atomic
def trigger_delete(*, trigger_id: int) -> None:
    """Delete a trigger, its execution log and its timers."""
    deleted, _ = Trigger.objects.filter(pk=trigger_id).delete()
    if not deleted:
        raise NotFound("Trigger not found.")


def trigger_version_bump(*, trigger: Trigger) -> None:
    """Admin saves: every change bumps the version (the change form and the list's editable rows)."""
    trigger.version = (trigger.version or 0) + 1


def triggers_set_enabled(*, trigger_ids: list[int], enabled: bool) -> int:
    """Enable or disable triggers; returns how many changed (each one's version goes up)."""
    changed = (
        Trigger.objects.filter(pk__in=trigger_ids)
        .exclude(enabled=enabled)
        .update(enabled=enabled, updated_at=timezone.now(), version=F("version") + 1)
    )
    ruleset_invalidate()  # update() sends no post_save
    return changed
