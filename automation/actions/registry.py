"""What a trigger can do: a registry of action types, each a function plus a params schema.

The built-in types live one per module in this package (``automation.actions.create_task`` …);
``AutomationConfig.ready()`` registers them (``automation.actions.builtin_actions_register``).

Adding an action type is a few lines::

    @action_type("notify_slack", Param("channel", required=True), Param("text", template=True))
    def notify_slack(context: ActionContext, params: dict) -> dict:
        ...
        return {"sent": True}

The function runs inside the engine's per-trigger savepoint; it writes through the workflow services
with ``actor=None`` and ``caused_by=context.event`` so every event it causes carries the causation id,
the correlation id and ``depth + 1``. A ``DomainError`` it raises is recorded as a refusal; its return
value (JSON-able) is stored in the ``TriggerExecution``.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from outbox.models import OutboxEvent
from workflow.models import ActionPlan, Task

from ..models import Trigger
from .templating import template_render

MAX_ACTIONS = 20


@dataclass(frozen=True)
class Param:
    """One parameter of an action type. ``template``: a ``string.Template`` filled from the event."""

    name: str
    required: bool = False
    kind: type | tuple[type, ...] = str
    choices: tuple[str, ...] | None = None
    max_length: int | None = None
    template: bool = False
    check: Callable[[Any], str | None] | None = None
    # What ``check`` accepts, as JSON Schema (for the API's OpenAPI document); None: nothing beyond the
    # kind, choices and length (a check that depends on stored rows, such as an id that must exist).
    schema: dict[str, Any] | None = None

    def problems(self, value: Any) -> list[str]:
        if not isinstance(value, self.kind) or (isinstance(value, bool) and self.kind is not bool):
            kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
            return [f"must be {' or '.join(_KIND_WORDS.get(k, k.__name__) for k in kinds)}"]
        if self.choices is not None and value not in self.choices:
            return [f"must be one of: {', '.join(self.choices)}"]
        if self.max_length is not None and isinstance(value, str) and len(value) > self.max_length:
            return [f"must be at most {self.max_length} characters"]
        if self.template and isinstance(value, str) and not string.Template(value).is_valid():
            return ["has a malformed $placeholder (use $name or ${name}; $$ for a dollar sign)"]
        if self.check is not None:
            problem = self.check(value)
            if problem:
                return [problem]
        return []


_KIND_WORDS = {str: "a string", int: "an integer", bool: "true or false"}


@dataclass
class ActionContext:
    """The event an action reacts to, its predicate names, and the aggregate it is about (loaded once)."""

    event: OutboxEvent
    names: Mapping[str, Any]
    trigger: Trigger | None = None
    _source: Any = field(default=None, repr=False)
    _source_loaded: bool = field(default=False, repr=False)

    def source(self) -> Task | ActionPlan | None:
        """The task or action plan the event is about, if any."""
        if not self._source_loaded:
            self._source = _source_of(self.event)
            self._source_loaded = True
        return self._source

    def render(self, template: str) -> str:
        return template_render(template, event=self.event, names=self.names)


def _source_of(event: OutboxEvent) -> Task | ActionPlan | None:
    if event.aggregate_type == Task.aggregate_type:
        return Task.objects.select_related("action_plan").filter(pk=event.aggregate_id).first()
    if event.aggregate_type == ActionPlan.aggregate_type:
        return ActionPlan.objects.filter(pk=event.aggregate_id).first()
    # Events of other aggregates (e.g. SLA records) name the task they concern in the payload.
    for key, model in (("task_id", Task), ("action_plan_id", ActionPlan)):
        object_id = event.payload_uuid(key)
        if object_id is not None:
            return model.objects.filter(pk=object_id).first()
    return None


@dataclass(frozen=True)
class ActionType:
    name: str
    func: Callable[[ActionContext, dict[str, Any]], dict[str, Any]]
    params: tuple[Param, ...]
    # True when the action writes one statement at most (refusals raised before it): a trigger whose
    # only action is such needs no savepoint of its own (see automation.engine).
    single_write: bool = False

    def validate(self, params: Any) -> list[str]:
        if not isinstance(params, dict):
            return ["params must be an object"]
        known = {p.name for p in self.params}
        problems = [f"unknown param {key!r}" for key in params if key not in known]
        for param in self.params:
            if param.name not in params or params[param.name] in (None, ""):
                if param.required:
                    problems.append(f"{param.name} is required")
                continue
            problems.extend(f"{param.name} {problem}" for problem in param.problems(params[param.name]))
        return problems

    def preview(self, context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
        """The params as this event would fill them (for dry-runs): templates rendered, nothing written."""
        rendered = dict(params)
        for param in self.params:
            if param.template and isinstance(rendered.get(param.name), str):
                rendered[param.name] = context.render(rendered[param.name])
        return {"type": self.name, "params": rendered}


ACTION_TYPES: dict[str, ActionType] = {}


def action_type(name: str, *params: Param, single_write: bool = False) -> Callable:
    """Register an action type (decorator)."""

    def register(func: Callable[[ActionContext, dict[str, Any]], dict[str, Any]]):
        ACTION_TYPES[name] = ActionType(name, func, params, single_write)
        return func

    return register


def actions_validate(actions: Any) -> list[str]:
    """Problems with a trigger's action list, each prefixed with its position; empty when valid."""
    if not isinstance(actions, list):
        return ["Actions must be a list of {type, params} objects."]
    if len(actions) > MAX_ACTIONS:
        return [f"At most {MAX_ACTIONS} actions per trigger."]
    problems: list[str] = []
    for index, action in enumerate(actions):
        where = f"Action {index + 1}"
        if not isinstance(action, dict):
            problems.append(f"{where}: must be an object with 'type' and 'params'.")
            continue
        extra = set(action) - {"type", "params"}
        if extra:
            problems.append(f"{where}: unknown keys {', '.join(sorted(extra))}.")
        kind = ACTION_TYPES.get(action.get("type"))  # type: ignore[arg-type]
        if kind is None:
            problems.append(
                f"{where}: unknown type {action.get('type')!r}; one of {', '.join(ACTION_TYPES)}."
            )
            continue
        problems.extend(
            f"{where} ({kind.name}): {problem}." for problem in kind.validate(action.get("params", {}))
        )
    return problems
