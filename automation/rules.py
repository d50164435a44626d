"""The trigger rules: what makes a trigger valid (event type, predicate, actions).

The model does not run these (``Trigger`` stays free of the predicate language and the action registry);
the admin form and ``automation.services.trigger_create`` do, so both show the errors the engine would hit.
"""

from __future__ import annotations

import re
from typing import Any

from .actions.registry import actions_validate  # importing the package registers the built-in types
from .predicates import PredicateError, predicate_validate

_EVENT_TYPE = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")


def trigger_validate(*, event_type: Any, predicate: Any, actions: Any) -> dict[str, list[str]]:
    """Problems with a trigger's event type, predicate and actions, by field; empty when valid."""
    errors: dict[str, list[str]] = {}
    if not _EVENT_TYPE.match(event_type or ""):
        errors["event_type"] = ["An event type name in PascalCase, e.g. TaskStateChanged or SLABreached."]
    try:
        predicate_validate(predicate)
    except PredicateError as exc:
        errors["predicate"] = [str(exc)]
    action_errors = actions_validate(actions)
    if action_errors:
        errors["actions"] = action_errors
    return errors
