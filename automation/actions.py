"""What a trigger can do: a registry of action types, each a function plus a params schema.

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

import logging
import string
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import transaction

from outbox.models import OutboxEvent
from polaris.accounts.models import User
from polaris.errors import NotFound, ValidationFailed
from workflow.models import ActionPlan, Task, TaskPriority, TaskState
from workflow.services.tasks import task_create, task_transition

from .models import Alert, Trigger, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger("automation.actions")

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
    payload = event.payload or {}
    if event.aggregate_type == Task.aggregate_type:
        return Task.objects.select_related("action_plan").filter(pk=event.aggregate_id).first()
    if event.aggregate_type == ActionPlan.aggregate_type:
        return ActionPlan.objects.filter(pk=event.aggregate_id).first()
    # Events of other aggregates (e.g. SLA records) name the task they concern in the payload.
    for key, model in (("task_id", Task), ("action_plan_id", ActionPlan)):
        object_id = _as_uuid(payload.get(key))
        if object_id is not None:
            return model.objects.filter(pk=object_id).first()
    return None


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def template_fields(*, event: OutboxEvent | Mapping[str, Any], names: Mapping[str, Any]) -> dict[str, str]:
    """Placeholders a template may use: the payload's scalar fields, the predicate names, the event ids."""
    fields: dict[str, str] = {}
    payload = names.get("payload") or {}
    for source in (payload, names):
        for key, value in source.items():
            if isinstance(value, str | int | float) or value is None:
                fields[str(key)] = "" if value is None else str(value)
    if isinstance(event, OutboxEvent):
        fields["event_id"] = str(event.id)
        fields["correlation_id"] = event.correlation_id
    return fields


def template_render(
    template: str, *, event: OutboxEvent | Mapping[str, Any], names: Mapping[str, Any]
) -> str:
    """Fill ``$name`` placeholders. ``string.Template`` only substitutes flat names: it cannot reach
    attributes or indexes the way ``str.format`` can, and unknown placeholders are left as written."""
    return string.Template(template).safe_substitute(template_fields(event=event, names=names))


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


def _slug_check(value: str) -> str | None:
    from workflow.validation import SLUG

    return None if SLUG.match(value) else "must be a lowercase slug such as 'assessment'"


def _assignee_check(value: Any) -> str | None:
    if value == "source" or (isinstance(value, int) and not isinstance(value, bool)):
        return None
    return "must be a user id or 'source' (the source task's assignee)"


def _endpoint_check(value: int) -> str | None:
    if not WebhookEndpoint.objects.filter(pk=value).exists():
        return f"no webhook endpoint with id {value}"
    return None


# --- the built-in action types ---


@action_type(
    "create_task",
    Param("task_type", required=True, max_length=64, check=_slug_check),
    Param("title", required=True, max_length=200, template=True),
    Param("priority", choices=tuple(TaskPriority.values)),
    Param("service_area", max_length=64, check=_slug_check),
    Param("description", max_length=5000, template=True),
    Param("assignee", kind=(int, str), check=_assignee_check),
)
def create_task(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """A new task for the source's client, agency and plan (service area inherited unless given)."""
    source = context.source()
    if source is None:
        raise ValidationFailed("create_task needs an event about a task or an action plan.")
    plan = source.action_plan if isinstance(source, Task) else source
    service_area = params.get("service_area") or (source.service_area if isinstance(source, Task) else "")
    assignee = None
    if params.get("assignee") == "source":
        assignee = source.assignee if isinstance(source, Task) else None
    elif params.get("assignee"):
        assignee = User.objects.filter(pk=params["assignee"]).first()
        if assignee is None:
            raise NotFound(f"Assignee {params['assignee']} not found.")
    task = task_create(
        actor=None,
        title=context.render(params["title"])[:200],
        description=context.render(params.get("description") or ""),
        task_type=params["task_type"],
        priority=params.get("priority") or TaskPriority.NORMAL,
        service_area=service_area,
        client=source.client,
        agency=source.agency,
        assignee=assignee,
        action_plan=plan,
        caused_by=context.event,
    )
    return {"task_id": str(task.pk)}


@action_type(
    "update_task_state",
    Param("target_state", required=True, choices=tuple(TaskState.values)),
    Param("task_id_field", max_length=100),
    Param("reason", max_length=1000, template=True),
)
def update_task_state(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Move the source task (or the one whose id is in ``payload[task_id_field]``) through the same
    service the API uses: edges, guards and the event are the same; a refusal is a ``DomainError``."""
    if params.get("task_id_field"):
        task_id = (context.names.get("payload") or {}).get(params["task_id_field"])
    else:
        source = context.source()
        task_id = source.pk if isinstance(source, Task) else None
    if not task_id:
        raise NotFound("No task to update for this event.")
    task, event = task_transition(
        task_id=task_id,
        target_state=params["target_state"],
        actor=None,
        reason=context.render(params.get("reason") or ""),
        caused_by=context.event,
    )
    return {"task_id": str(task.pk), "state": task.state, "event_id": str(event.id)}


@action_type(
    "emit_alert",
    Param("severity", choices=tuple(Alert.Severity.values)),
    Param("message", required=True, max_length=500, template=True),
    single_write=True,
)
def emit_alert(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """An ``Alert`` for the event's agency (admins see all) and a structured log line."""
    alert = alert_raise(
        severity=params.get("severity") or Alert.Severity.WARNING,
        message=context.render(params["message"])[:500],
        event=context.event,
        trigger=context.trigger,
    )
    return {"alert_id": alert.pk}


@action_type("webhook", Param("endpoint", kind=int, check=_endpoint_check))
def webhook(context: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Queue a signed delivery of the event to one endpoint (or every enabled endpoint accepting it).

    The HTTP request happens later in a Celery task enqueued after commit, never in this transaction.
    """
    endpoints = WebhookEndpoint.objects.filter(enabled=True)
    if params.get("endpoint"):
        endpoints = endpoints.filter(pk=params["endpoint"])
    delivery_ids = []
    for endpoint in endpoints:
        if not endpoint.accepts(context.event.event_type):
            continue
        delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=context.event)
        delivery_ids.append(delivery.pk)
        transaction.on_commit(partial(webhook_enqueue, delivery.pk), robust=True)
    return {"deliveries": delivery_ids}


def webhook_enqueue(delivery_id: int) -> None:
    """Queue one delivery attempt (after commit). No publish retries: if the broker is down the delivery
    stays ``pending`` and ``automation.webhook_sweep`` (or an admin replay) picks it up."""
    from .tasks import webhook_deliver_task

    webhook_deliver_task.apply_async((delivery_id,), retry=False)


def alert_raise(
    *, severity: str, message: str, event: OutboxEvent | None = None, trigger: Trigger | None = None
) -> Alert:
    """Write an alert, scoped to the agency the event concerns, and log it."""
    agency_id = _as_uuid((event.payload or {}).get("agency_id")) if event is not None else None
    alert = Alert.objects.create(
        severity=severity, message=message, agency_id=agency_id, event=event, trigger=trigger
    )
    logger.log(
        logging.WARNING if severity != Alert.Severity.INFO else logging.INFO,
        "automation alert: %s",
        message,
        extra={
            "alert_id": alert.pk,
            "severity": severity,
            "agency_id": str(agency_id) if agency_id else None,
            "event_id": str(event.id) if event is not None else None,
            "correlation_id": event.correlation_id if event is not None else None,
            "trigger_id": trigger.pk if trigger is not None else None,
        },
    )
    return alert
