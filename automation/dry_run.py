"""Dry-run: would a trigger fire for an event, which top-level clause failed, what would it do?

It applies the engine's own rules in the engine's order: the event type, the agency scope
(``automation.ruleset.scope_admits``, the same function), the predicate, the depth limit.
Reads only: nothing is written, no metric is counted. The predicate runs under the engine's budget
(``automation.predicates``: bounded work and memory), so a dry-run answers within milliseconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from outbox.models import OutboxEvent
from polaris.errors import ValidationFailed

from .actions.registry import ACTION_TYPES, ActionContext
from .engine import event_names
from .models import Trigger
from .predicates import PredicateError, predicate_compile
from .ruleset import scope_admits, trigger_scope

# The keys an event body may have, and what each must be (anything else is a 400 naming the key).
EVENT_BODY_KEYS = (
    "event_type",
    "payload",
    "depth",
    "aggregate_id",
    "aggregate_type",
    "actor_role",
    "actor_id",
    "correlation_id",
)
_TEXT_LIMITS = {"aggregate_type": 32, "actor_role": 32, "correlation_id": 64}


def _event_from_body(body: Mapping[str, Any]) -> tuple[OutboxEvent, str | None]:
    """An unsaved ``OutboxEvent`` built from a JSON body (for dry-runs of events that never happened).

    Strict: unknown keys and values of the wrong type are refused (``VALIDATION_ERROR`` naming them)."""
    if not isinstance(body, Mapping):
        raise ValidationFailed(details={"event": ["Must be an object."]})
    errors: dict[str, list[str]] = {
        f"event.{key}": [f"Unknown key; the event body takes: {', '.join(EVENT_BODY_KEYS)}."]
        for key in body
        if key not in EVENT_BODY_KEYS
    }
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        errors["event_type"] = ["Required: the event type, e.g. TaskStateChanged."]
    payload = body.get("payload", {})
    if not isinstance(payload, dict):
        errors["payload"] = ["Must be an object."]
        payload = {}
    depth = body.get("depth", 0)
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        errors["depth"] = ["Must be a non-negative integer."]
    actor_id = body.get("actor_id")
    if actor_id is not None and (not isinstance(actor_id, int) or isinstance(actor_id, bool)):
        errors["actor_id"] = ["Must be an integer or null."]
    for key, limit in _TEXT_LIMITS.items():
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            errors[key] = [f"Must be a string of at most {limit} characters, or null."]
    if body.get("aggregate_id") is not None and not isinstance(body["aggregate_id"], str):
        errors["aggregate_id"] = ["Must be a UUID."]
    aggregate_id = body.get("aggregate_id") or payload.get("task_id") or payload.get("action_plan_id")
    try:
        aggregate_uuid = uuid.UUID(str(aggregate_id)) if aggregate_id else uuid.uuid4()
    except ValueError:
        errors["aggregate_id"] = ["Must be a UUID."]
        aggregate_uuid = uuid.uuid4()
    if errors:
        raise ValidationFailed(details=errors)
    aggregate_type = body.get("aggregate_type") or (
        "task" if "task_id" in payload else "action_plan" if "action_plan_id" in payload else ""
    )
    event = OutboxEvent(
        event_type=str(event_type),
        aggregate_type=str(aggregate_type),
        aggregate_id=aggregate_uuid,
        sequence=0,
        actor_id=actor_id,
        correlation_id=body.get("correlation_id") or "dry-run",
        depth=depth,
        payload=payload,
    )
    return event, body.get("actor_role")


def trigger_dry_run(
    *, trigger: Trigger, event: OutboxEvent | None = None, event_body: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Would ``trigger`` fire for this event? Which top-level clause failed, and what would it do?

    Give a stored ``event`` or an ``event_body`` (``{event_type, payload, depth?, actor_role?, ...}``).
    Reads only: nothing is written, no metric is counted.
    """
    actor_role = None
    if event is None:
        if event_body is None:
            raise ValidationFailed("Give an event_id or an event.")
        event, actor_role = _event_from_body(event_body)
    names = event_names(event, actor_role=actor_role)
    scope = trigger_scope(trigger)
    answer: dict[str, Any] = {
        "trigger_id": trigger.pk,
        "trigger": trigger.name,
        "enabled": trigger.enabled,
        "event_id": str(event.id) if event.pk and not event._state.adding else None,
        "event_type": event.event_type,
        "event_type_matches": event.event_type == trigger.event_type,
        "agency_matches": scope_admits(scope, names["payload"]),
        "matched": False,
        "failed_clause": None,
        "clauses": [],
        "error": None,
        "loop_prevented": False,
        "actions": [],
    }
    if not answer["event_type_matches"]:
        answer["failed_clause"] = f"event_type == {trigger.event_type!r}"
        return answer
    if not answer["agency_matches"]:  # the engine would skip it: another agency's event
        answer["failed_clause"] = f"payload['agency_id'] == {scope!r}"
        return answer
    try:
        explanation = predicate_compile(trigger.predicate or "").explain(names)
    except PredicateError as exc:
        answer["error"] = str(exc)
        return answer
    answer.update(
        matched=explanation.matched,
        failed_clause=explanation.failed_clause,
        clauses=explanation.clauses,
        error=explanation.error,
    )
    if not explanation.matched:
        return answer
    if event.depth >= settings.AUTOMATION_MAX_DEPTH:
        answer["loop_prevented"] = True
        return answer
    context = ActionContext(event=event, names=names, trigger=trigger)
    for action in trigger.actions:
        kind = ACTION_TYPES.get(action.get("type", ""))
        if kind is not None:
            answer["actions"].append(kind.preview(context, action.get("params") or {}))
    return answer
