"""Task blueprints: what a template version may hold, checked without the database (its approval
policy is checked by ``workflow.services.approvals.approval_policy_validate``).

A blueprint is a JSON object (``BLUEPRINT_FIELDS``); a version's blueprints form a DAG through
``depends_on``. ``blueprints_clean`` returns them normalised (defaults filled, strings stripped) or raises
``ValidationFailed`` naming each problem by position, and ``DependencyCycle`` naming a cycle's keys.
"""

from __future__ import annotations

from typing import Any

from polaris.errors import ValidationFailed
from workflow.states import TaskPriority
from workflow.validation import is_slug, title_errors

MAX_BLUEPRINTS = 100
MAX_DEPENDS_ON = 100
MAX_CHECKLIST_ITEMS = 50
MAX_CHECKLIST_TEXT = 500
MAX_DESCRIPTION = 2000
# A year of business hours at 24x7 is 8,760: anything beyond is a typo, not a plan.
MAX_DUE_IN_BUSINESS_HOURS = 8760


class OnPredecessorCancelled:
    """What a waiting task does when one of its predecessors is cancelled (per blueprint, default ready)."""

    READY = "ready"  # the cancelled predecessor counts as done: the task may become ready
    CANCEL = "cancel"  # the task is cancelled too (and so, in turn, its own ``cancel`` dependents)
    values = (READY, CANCEL)


BLUEPRINT_FIELDS = (
    "key",
    "title",
    "description",
    "task_type",
    "service_area",
    "priority",
    "due_in_business_hours",
    "depends_on",
    "checklist",
    "on_predecessor_cancelled",
)


class DependencyCycle(ValidationFailed):
    """``depends_on`` makes a loop: no task of it could ever start. ``details.cycle`` names its keys."""

    error_code = "DEPENDENCY_CYCLE"

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(
            f"The blueprints' depends_on make a cycle: {' → '.join(cycle)}.",
            details={"cycle": cycle, "blueprints": [f"Cycle: {' → '.join(cycle)}."]},
        )


def _text(value: Any, *, limit: int) -> tuple[str, list[str]]:
    if not isinstance(value, str):
        return "", ["Must be a string."]
    if len(value) > limit:
        return "", [f"At most {limit} characters."]
    return value.strip(), []


def _checklist(value: Any) -> tuple[list[dict[str, Any]], list[str]]:
    if value is None:
        return [], []
    if not isinstance(value, list):
        return [], ["Must be a list of {text, required}."]
    if len(value) > MAX_CHECKLIST_ITEMS:
        return [], [f"At most {MAX_CHECKLIST_ITEMS} items."]
    items, problems = [], []
    for position, item in enumerate(value):
        if not isinstance(item, dict) or set(item) - {"text", "required"}:
            problems.append(f"Item {position}: an object with text and required only.")
            continue
        text, errors = _text(item.get("text"), limit=MAX_CHECKLIST_TEXT)
        if errors or not text:
            problems.append(f"Item {position}: text {'; '.join(errors) or 'may not be blank.'}")
            continue
        required = item.get("required", False)
        if not isinstance(required, bool):
            problems.append(f"Item {position}: required must be true or false.")
            continue
        items.append({"text": text, "required": required})
    return items, problems


def _hours(value: Any) -> tuple[float | None, list[str]]:
    if value is None:
        return None, []
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None, ["Must be a number of business hours (or null: no due date)."]
    if not 0 < value <= MAX_DUE_IN_BUSINESS_HOURS:
        return None, [f"Must be more than 0 and at most {MAX_DUE_IN_BUSINESS_HOURS}."]
    return (int(value) if float(value).is_integer() else float(value)), []


def _blueprint_clean(raw: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """One blueprint normalised, and its problems by field (references to other keys are checked later)."""
    if not isinstance(raw, dict):
        return {}, {"non_field_errors": ["Each blueprint is an object."]}
    errors: dict[str, list[str]] = {}
    if unknown := sorted(set(raw) - set(BLUEPRINT_FIELDS)):
        errors["non_field_errors"] = [f"Unknown field(s): {', '.join(map(str, unknown))}."]
    key = raw.get("key")
    if not isinstance(key, str) or not is_slug(key):
        errors["key"] = ["A lowercase slug (at most 64 characters) unique in the template."]
    title, problems = _text(raw.get("title", ""), limit=1000)
    if problems or (problems := title_errors(title)):
        errors["title"] = problems
    description, problems = _text(raw.get("description", ""), limit=MAX_DESCRIPTION)
    if problems:
        errors["description"] = problems
    task_type = raw.get("task_type")
    if not isinstance(task_type, str) or not is_slug(task_type):
        errors["task_type"] = ["Use a lowercase slug such as 'intake' or 'home-visit'."]
    service_area = raw.get("service_area", "")
    if not isinstance(service_area, str) or (service_area and not is_slug(service_area)):
        errors["service_area"] = ["Use a lowercase slug such as 'housing' (or leave it out)."]
    priority = raw.get("priority", TaskPriority.NORMAL)
    if priority not in TaskPriority.values:
        errors["priority"] = [f"Choose one of: {', '.join(TaskPriority.values)}."]
    hours, problems = _hours(raw.get("due_in_business_hours"))
    if problems:
        errors["due_in_business_hours"] = problems
    depends_on = raw.get("depends_on", [])
    if not isinstance(depends_on, list) or not all(isinstance(item, str) for item in depends_on):
        errors["depends_on"] = ["A list of other blueprints' keys."]
    elif len(depends_on) > MAX_DEPENDS_ON:
        errors["depends_on"] = [f"At most {MAX_DEPENDS_ON} keys."]
    checklist, problems = _checklist(raw.get("checklist"))
    if problems:
        errors["checklist"] = problems
    rule = raw.get("on_predecessor_cancelled", OnPredecessorCancelled.READY)
    if rule not in OnPredecessorCancelled.values:
        errors["on_predecessor_cancelled"] = [f"Choose one of: {', '.join(OnPredecessorCancelled.values)}."]
    if errors:
        return {}, errors
    return {
        "key": key,
        "title": title,
        "description": description,
        "task_type": task_type,
        "service_area": service_area,
        "priority": priority,
        "due_in_business_hours": hours,
        "depends_on": sorted(set(depends_on)),
        "checklist": checklist,
        "on_predecessor_cancelled": rule,
    }, {}


def dependency_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle of ``graph`` (key → the keys it depends on) as ``[a, b, …, a]``, or ``None`` (a DAG)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(graph):
        if state.get(root):
            continue
        path: list[str] = [root]
        stack = [iter(graph[root])]
        state[root] = 1
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(following) == 1:
                return [*path[path.index(following) :], following]
            elif not state.get(following):
                state[following] = 1
                path.append(following)
                stack.append(iter(graph.get(following, ())))
    return None


def blueprints_clean(raw: Any) -> list[dict[str, Any]]:
    """The version's blueprints normalised; ``ValidationFailed`` (by position) or ``DependencyCycle``."""
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed(details={"blueprints": ["A non-empty list of task blueprints."]})
    if len(raw) > MAX_BLUEPRINTS:
        raise ValidationFailed(details={"blueprints": [f"At most {MAX_BLUEPRINTS} blueprints."]})
    cleaned, errors = [], {}
    for position, item in enumerate(raw):
        blueprint, problems = _blueprint_clean(item)
        if problems:
            errors[f"blueprints[{position}]"] = [f"{field}: {'; '.join(m)}" for field, m in problems.items()]
        cleaned.append(blueprint)
    if errors:
        raise ValidationFailed(details=errors)
    keys = [blueprint["key"] for blueprint in cleaned]
    if duplicates := sorted({key for key in keys if keys.count(key) > 1}):
        raise ValidationFailed(details={"blueprints": [f"Duplicate key(s): {', '.join(duplicates)}."]})
    known = set(keys)
    for position, blueprint in enumerate(cleaned):
        if unknown := [key for key in blueprint["depends_on"] if key not in known]:
            errors[f"blueprints[{position}]"] = [f"depends_on: unknown key(s) {', '.join(unknown)}."]
    if errors:
        raise ValidationFailed(details=errors)
    if cycle := dependency_cycle({blueprint["key"]: blueprint["depends_on"] for blueprint in cleaned}):
        raise DependencyCycle(cycle)
    return cleaned
