"""Automation writes outside the engine: triggers (alerts: ``automation.alerts``; webhook endpoints and
redelivery: ``automation.webhooks.endpoints``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from polaris.errors import ValidationFailed

from .models import Trigger
from .rules import trigger_validate
from .ruleset import ruleset_invalidate


def trigger_errors(trigger: Trigger) -> dict[str, list[str]]:
    """Everything wrong with an unsaved ``trigger``, by field: the model's field checks, the trigger
    rules, then uniqueness of the fields that passed (the order ``Model.full_clean()`` reports in)."""
    errors: dict[str, list[str]] = {}
    try:
        trigger.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors = exc.message_dict
    rules = trigger_validate(
        event_type=trigger.event_type, predicate=trigger.predicate, actions=trigger.actions
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
    )
    errors = trigger_errors(trigger)
    if errors:
        raise ValidationFailed(details=errors) from None
    trigger.save()
    return trigger


def triggers_set_enabled(*, trigger_ids: list[int], enabled: bool) -> int:
    """Enable or disable triggers; returns how many changed."""
    changed = (
        Trigger.objects.filter(pk__in=trigger_ids)
        .exclude(enabled=enabled)
        .update(enabled=enabled, updated_at=timezone.now())
    )
    ruleset_invalidate()  # update() sends no post_save
    return changed
