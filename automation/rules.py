"""The trigger rules: what makes a trigger valid (event type, predicate, actions, its wait).

The model does not run these (``Trigger`` stays free of the predicate language and the action registry);
the admin form and the trigger services (``automation.services``) do, so both show the errors the engine
would hit. Event types must be registered (``outbox.events.event_types_registered``): a misspelt type
could never fire.
"""

from __future__ import annotations

from typing import Any

from outbox.events import event_types_registered

from .actions.registry import actions_validate
from .predicates import PredicateError, predicate_validate

# A timer's firing is handled by the engine itself (the timed trigger that set it); not a trigger's type.
NOT_FOR_TRIGGERS = ("TimerFired",)
MAX_WAIT_MINUTES = 60 * 24 * 366
MAX_UNLESS = 20


def _event_type_problem(event_type: Any) -> str | None:
    known = [t for t in event_types_registered() if t not in NOT_FOR_TRIGGERS]
    if not isinstance(event_type, str) or event_type not in known:
        return f"Unknown event type {event_type!r}; one of: {', '.join(known)}."
    return None


def trigger_validate(
    *,
    event_type: Any,
    predicate: Any,
    actions: Any,
    wait_minutes: Any = None,
    unless: Any = None,
) -> dict[str, list[str]]:
    """Problems with a trigger's event type, predicate, actions and wait, by field; empty when valid."""
    errors: dict[str, list[str]] = {}
    problem = _event_type_problem(event_type)
    if problem:
        errors["event_type"] = [problem]
    try:
        predicate_validate(predicate)
    except PredicateError as exc:
        errors["predicate"] = [str(exc)]
    action_errors = actions_validate(actions)
    if action_errors:
        errors["actions"] = action_errors
    if wait_minutes is not None and (
        not isinstance(wait_minutes, int)
        or isinstance(wait_minutes, bool)
        or not 0 < wait_minutes <= MAX_WAIT_MINUTES
    ):
        errors["wait_minutes"] = [f"A whole number of minutes from 1 to {MAX_WAIT_MINUTES}, or null."]
    unless = unless if unless is not None else []
    if not isinstance(unless, list) or len(unless) > MAX_UNLESS:
        errors["unless"] = [f"A list of at most {MAX_UNLESS} event types."]
    else:
        problems = [p for p in (_event_type_problem(t) for t in unless) if p]
        if problems:
            errors["unless"] = problems
        elif unless and wait_minutes is None:
            errors["unless"] = ["Only a timed trigger (wait_minutes set) can be cancelled by events."]
    return errors
