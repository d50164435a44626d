"""The automation engine: the dispatcher handler that runs triggers, and the dry-run that explains them.

Transactions. The dispatcher calls ``automation_handle_event`` inside a transaction that also writes its
``HandledEvent`` ledger row. Each trigger that matched runs in its own savepoint: its actions' effects
and its ``TriggerExecution`` row commit (or roll back) together, and a trigger that fails with an
unexpected error rolls back only its own effects and is recorded as ``error`` — the other triggers'
effects stand and the event is *not* retried (a deterministic bug would fail again the same way).
Transient errors (``OperationalError``/``InterfaceError``, and ``ConcurrentModification`` when a person
moved the task first) are re-raised instead, so the whole event rolls back and the dispatcher retries it
with backoff.

Effectively once. The ledger makes a redelivered event a no-op; independently, the unique
``(trigger, event)`` constraint on ``TriggerExecution`` commits with the effects, so even a second run of
the handler for the same event cannot repeat a trigger's effects (the duplicate savepoint rolls back).

Alert-only triggers. A trigger whose only action writes a single row (``emit_alert``) runs without a
savepoint: that row and its execution row commit with the event, and any failure is re-raised for the
dispatcher to retry (two round trips saved per alert, most of the cost of a match).

Speed. Enabled triggers are loaded per event type and cached per process (``_ruleset``); they are
indexed by their guard (a first clause ``name == "x"``/``name in (...)``), so an event evaluates only
the triggers that can match it; evaluation counts are published to Prometheus in batches.

Loops. Events written by actions carry ``depth + 1``. For an event at ``AUTOMATION_MAX_DEPTH`` or deeper
no matching trigger fires: its execution is recorded ``loop_prevented`` and a critical alert is raised.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction

from outbox.models import OutboxEvent
from polaris.accounts.models import User
from polaris.errors import ConcurrentModification, DomainError, ValidationFailed
from polaris.metrics import AUTOMATION_TRIGGER_EVALUATIONS

from .actions import ACTION_TYPES, ActionContext, alert_raise
from .models import Alert, Trigger, TriggerExecution
from .predicates import EVALUATION_ERRORS, CompiledPredicate, PredicateError, predicate_compile

logger = logging.getLogger("automation.engine")

HANDLER_NAME = "automation"
Outcome = TriggerExecution.Outcome
# Plain strings for the hot loop (enum members hash through a Python-level __hash__).
MATCHED, NOT_MATCHED, REFUSED, ERROR, LOOP_PREVENTED = (
    str(Outcome.MATCHED.value),
    str(Outcome.NOT_MATCHED.value),
    str(Outcome.REFUSED.value),
    str(Outcome.ERROR.value),
    str(Outcome.LOOP_PREVENTED.value),
)
_ONCE_CONSTRAINT = "trigger_execution_once_per_event"


def event_names(event: OutboxEvent, *, actor_role: str | None = None, with_actor_role: bool = True) -> dict:
    """The names a predicate sees for ``event``. ``actor_role`` costs a query, so it is looked up only
    when some predicate uses it (``system`` for events without a human actor)."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    names: dict[str, Any] = {
        "event_type": event.event_type,
        "aggregate_type": event.aggregate_type,
        "old_state": payload.get("old_state"),
        "new_state": payload.get("new_state"),
        "transition": payload.get("transition"),
        "task_type": payload.get("task_type"),
        "service_area": payload.get("service_area"),
        "priority": payload.get("priority"),
        "reason": payload.get("reason"),
        "depth": event.depth,
        "payload": payload,
        "actor_role": actor_role,
    }
    if actor_role is None and with_actor_role:
        if event.actor_id is None:
            names["actor_role"] = "system"
        else:
            names["actor_role"] = (
                User.objects.filter(pk=event.actor_id).values_list("role", flat=True).first()
            )
    return names


def _compile(trigger: Trigger) -> tuple[CompiledPredicate | None, str]:
    try:
        return predicate_compile(trigger.predicate or ""), ""
    except PredicateError as exc:  # only reachable if a row bypassed Trigger.clean()
        return None, f"Invalid predicate: {exc}"


class _Entry(NamedTuple):
    trigger: Trigger
    predicate: CompiledPredicate | None
    compile_error: str
    label: str  # the trigger id as the metric label


@dataclass(frozen=True)
class _Ruleset:
    """The enabled triggers of one event type, compiled and indexed, as loaded at ``loaded_at``.

    ``index[name][value]`` lists the triggers whose predicate can only be true when the event's
    ``name`` is ``value`` (their guard); ``unguarded`` the others. An event evaluates the unguarded
    triggers plus those its values select, in position order: the rest are false without looking.
    """

    loaded_at: float
    entries: tuple[_Entry, ...]
    labels: tuple[str, ...]
    unguarded: tuple[int, ...]
    index: dict[str, dict[str, tuple[int, ...]]]
    guarded_on: dict[str, tuple[int, ...]]  # every trigger guarded on a name (for non-string values)
    needs_role: bool

    def candidates(self, names: Mapping[str, Any]) -> list[int]:
        if not self.index:
            return list(self.unguarded)
        found = list(self.unguarded)
        for name, by_value in self.index.items():
            value = names.get(name)
            if isinstance(value, str):
                found.extend(by_value.get(value, ()))
            else:  # the guard is decided for strings only: evaluate these in full
                found.extend(self.guarded_on[name])
        found.sort()
        return found


def _ruleset_build(triggers: list[Trigger], loaded_at: float) -> _Ruleset:
    entries = tuple(_Entry(trigger, *_compile(trigger), str(trigger.pk)) for trigger in triggers)
    unguarded: list[int] = []
    index: dict[str, dict[str, list[int]]] = {}
    guarded_on: dict[str, list[int]] = {}
    for position, entry in enumerate(entries):
        guard = entry.predicate.guard if entry.predicate is not None else None
        if guard is None:
            unguarded.append(position)
            continue
        name, values = guard
        guarded_on.setdefault(name, []).append(position)
        for value in values:
            index.setdefault(name, {}).setdefault(value, []).append(position)
    return _Ruleset(
        loaded_at=loaded_at,
        entries=entries,
        labels=tuple(entry.label for entry in entries),
        unguarded=tuple(unguarded),
        index={name: {v: tuple(ps) for v, ps in by_value.items()} for name, by_value in index.items()},
        guarded_on={name: tuple(ps) for name, ps in guarded_on.items()},
        needs_role=any(e.predicate is not None and "actor_role" in e.predicate.names for e in entries),
    )


_rulesets: dict[str, _Ruleset] = {}
# Set while this process has trigger changes that are not committed yet: a rollback would leave a cached
# ruleset holding triggers that never existed, so nothing is cached until such changes commit.
_uncommitted_changes = False


def _changes_committed() -> None:
    global _uncommitted_changes
    _uncommitted_changes = False
    _rulesets.clear()


def trigger_cache_clear(**_: Any) -> None:
    """Forget the cached triggers (connected to ``Trigger`` saves and deletes; services call it too)."""
    global _uncommitted_changes
    _rulesets.clear()
    if transaction.get_connection().in_atomic_block:
        _uncommitted_changes = True
        transaction.on_commit(_changes_committed)


def _ruleset(event_type: str) -> _Ruleset:
    """Enabled triggers for ``event_type``, cached per process for ``AUTOMATION_TRIGGER_CACHE_SECONDS``.

    Loading them is a query and up to dozens of model instances; doing it for every event would cost
    more than all the predicates together. Edits made in this process clear the cache at once; edits
    made elsewhere (the admin runs in the web process) reach a worker within the cache lifetime.
    """
    now = time.monotonic()
    cached = _rulesets.get(event_type)
    if cached is not None and now - cached.loaded_at < settings.AUTOMATION_TRIGGER_CACHE_SECONDS:
        return cached
    triggers = list(Trigger.objects.filter(enabled=True, event_type=event_type).order_by("position", "id"))
    ruleset = _ruleset_build(triggers, now)
    if not _uncommitted_changes:
        _rulesets[event_type] = ruleset
    return ruleset


def automation_handle_event(event: OutboxEvent) -> None:
    """Run the enabled triggers for ``event.event_type`` in position order (the ``automation`` handler)."""
    ruleset = _ruleset(event.event_type)
    if not ruleset.entries:
        return
    names = event_names(event, with_actor_role=ruleset.needs_role)
    # Outcomes other than not_matched; not_matched is every trigger of the ruleset minus these.
    outcomes: list[tuple[str, str]] = []
    too_deep = event.depth >= settings.AUTOMATION_MAX_DEPTH
    entries = ruleset.entries

    with transaction.atomic(savepoint=False):
        for position in ruleset.candidates(names):
            trigger, predicate, error, label = entries[position]
            started = time.perf_counter()
            matched = False
            if predicate is not None:
                try:
                    matched = predicate.evaluate_raw(names)
                except PredicateError as exc:
                    error = str(exc)
                except EVALUATION_ERRORS as exc:
                    error = f"Evaluation failed: {exc}"
            if error:
                outcome = _record(trigger, event, ERROR, started, error=error)
            elif not matched:
                continue
            elif too_deep:
                outcome = _record_loop_prevented(trigger, event, started)
            else:
                outcome = _fire(trigger, event, names, started)
            outcomes.append((label, outcome or _ALREADY_DONE))
        if settings.AUTOMATION_RECORD_NOT_MATCHED:
            done = {label for label, _ in outcomes}
            rows = [
                TriggerExecution(trigger=entry.trigger, event=event, outcome=NOT_MATCHED)
                for entry in entries
                if entry.label not in done
            ]
            TriggerExecution.objects.bulk_create(rows, ignore_conflicts=True)

    # Counted after commit, so a rolled-back (retried) event is not counted twice.
    labels = ruleset.labels
    transaction.on_commit(lambda: _metrics_add(labels, outcomes))


# Evaluation counts are summed in the process and published to Prometheus at most every
# _METRICS_FLUSH_SECONDS (a timer publishes the tail of a burst; exit publishes the rest): 50 triggers
# are 50 labelled increments per event, which would cost more than evaluating the 50 predicates.
# Per event only the ruleset (its labels) and the outcomes other than not_matched are kept; a trigger's
# not_matched count is the events its ruleset saw minus its other outcomes.
_METRICS_FLUSH_SECONDS = 0.5
_ALREADY_DONE = "already_done"  # the (trigger, event) pair had run before: not counted again
_metrics_lock = threading.Lock()
_pending_seen: Counter[tuple[str, ...]] = Counter()
_pending_outcomes: list[tuple[str, str]] = []
_last_flush = time.monotonic()
_flush_timer: threading.Timer | None = None


def _metrics_add(labels: tuple[str, ...], outcomes: list[tuple[str, str]]) -> None:
    global _flush_timer
    with _metrics_lock:
        _pending_seen[labels] += 1
        _pending_outcomes.extend(outcomes)
        due = time.monotonic() - _last_flush >= _METRICS_FLUSH_SECONDS
        if not due and _flush_timer is None:
            _flush_timer = threading.Timer(_METRICS_FLUSH_SECONDS, automation_metrics_flush)
            _flush_timer.daemon = True
            _flush_timer.start()
    if due:
        automation_metrics_flush()


def automation_metrics_flush() -> None:
    """Publish the evaluation counts summed so far to ``automation_trigger_evaluations_total``."""
    global _last_flush, _flush_timer
    with _metrics_lock:
        _last_flush = time.monotonic()
        seen, outcomes = dict(_pending_seen), list(_pending_outcomes)
        _pending_seen.clear()
        _pending_outcomes.clear()
        timer, _flush_timer = _flush_timer, None
    if timer is not None and timer is not threading.current_thread():
        timer.cancel()
    counts: Counter[tuple[str, str]] = Counter()
    for labels, events in seen.items():
        for label in labels:
            counts[(label, NOT_MATCHED)] += events
    for label, outcome in outcomes:
        counts[(label, NOT_MATCHED)] -= 1
        if outcome != _ALREADY_DONE:
            counts[(label, outcome)] += 1
    for (trigger_id, outcome), count in counts.items():
        if count > 0:
            AUTOMATION_TRIGGER_EVALUATIONS.labels(trigger_id, outcome).inc(count)


def _after_fork_in_child() -> None:
    # A forked pool process inherits the counts (its parent publishes them) but not the timer thread.
    global _metrics_lock, _flush_timer
    _metrics_lock = threading.Lock()
    _flush_timer = None
    _pending_seen.clear()
    _pending_outcomes.clear()


atexit.register(automation_metrics_flush)
os.register_at_fork(after_in_child=_after_fork_in_child)


def _is_duplicate(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == _ONCE_CONSTRAINT or _ONCE_CONSTRAINT in str(exc)


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _record(
    trigger: Trigger, event: OutboxEvent, outcome: str, started: float, *, error: str = "", results=None
) -> str | None:
    """Write an execution without effects; ``None`` when the pair was already recorded."""
    try:
        with transaction.atomic():
            TriggerExecution.objects.create(
                trigger=trigger,
                event=event,
                outcome=outcome,
                error=error[:5000],
                action_results=results or [],
                duration_ms=_elapsed_ms(started),
            )
    except IntegrityError as exc:
        if _is_duplicate(exc):
            return None
        raise
    return outcome


def _record_loop_prevented(trigger: Trigger, event: OutboxEvent, started: float) -> str | None:
    message = (
        f"Loop prevented: trigger {trigger.name!r} matched {event.event_type} at depth {event.depth} "
        f"(maximum {settings.AUTOMATION_MAX_DEPTH}); its actions did not run."
    )
    try:
        with transaction.atomic():
            TriggerExecution.objects.create(
                trigger=trigger,
                event=event,
                outcome=LOOP_PREVENTED,
                error=message,
                duration_ms=_elapsed_ms(started),
            )
            alert_raise(severity=Alert.Severity.CRITICAL, message=message[:500], event=event, trigger=trigger)
    except IntegrityError as exc:
        if _is_duplicate(exc):
            return None
        raise
    logger.warning("automation loop prevented", extra={"trigger_id": trigger.pk, "event_id": str(event.id)})
    return LOOP_PREVENTED


def _fire(trigger: Trigger, event: OutboxEvent, names: Mapping[str, Any], started: float) -> str | None:
    """Run the trigger's actions and record them, all in one savepoint."""
    context = ActionContext(event=event, names=names, trigger=trigger)
    if len(trigger.actions) == 1:
        kind = ACTION_TYPES.get(trigger.actions[0].get("type", ""))
        if kind is not None and kind.single_write:
            return _fire_single_write(trigger, event, context, started)
    try:
        with transaction.atomic():
            results = []
            refused = False
            for action in trigger.actions:
                result = _run_action(context, action)
                refused = refused or result["status"] == "refused"
                results.append(result)
            outcome = REFUSED if refused else MATCHED
            TriggerExecution.objects.create(
                trigger=trigger,
                event=event,
                outcome=outcome,
                action_results=results,
                duration_ms=_elapsed_ms(started),
            )
        return outcome
    except IntegrityError as exc:
        if _is_duplicate(exc):
            return None  # this trigger already ran for this event: its effects stand, these rolled back
        error = f"{type(exc).__name__}: {exc}"
    except (OperationalError, InterfaceError, ConcurrentModification):
        raise  # transient: let the dispatcher retry the whole event (with backoff)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    logger.exception("automation trigger failed", extra={"trigger_id": trigger.pk, "event_id": str(event.id)})
    return _record(trigger, event, ERROR, started, error=error)


def _fire_single_write(trigger: Trigger, event: OutboxEvent, context: ActionContext, started: float) -> str:
    """A trigger whose only action writes one row: no savepoint (two round trips saved per match).

    Its row and the execution row need no isolation from the other triggers: a refusal is raised before
    anything is written, and any other failure (a database error, or a second run of the pair hitting the
    unique constraint) is re-raised, so the dispatcher rolls the event back and retries it, or finds it
    already handled.
    """
    result = _run_action(context, trigger.actions[0])
    outcome = REFUSED if result["status"] == "refused" else MATCHED
    TriggerExecution.objects.create(
        trigger=trigger,
        event=event,
        outcome=outcome,
        action_results=[result],
        duration_ms=_elapsed_ms(started),
    )
    return outcome


def _run_action(context: ActionContext, action: dict[str, Any]) -> dict[str, Any]:
    kind = ACTION_TYPES.get(action.get("type", ""))
    params = action.get("params") or {}
    try:
        if kind is None:  # only reachable if a row bypassed Trigger.clean() or a type was removed
            raise ValidationFailed(f"Unknown action type {action.get('type')!r}.")
        # No savepoint per action (it would double the queries of a match): an action refuses before it
        # writes, or writes through a service whose own atomic() has already rolled its part back.
        output = kind.func(context, params)
    except ConcurrentModification:
        raise  # not a refusal: someone else moved the task first; the event is retried
    except DomainError as exc:
        return {
            "type": kind.name if kind is not None else str(action.get("type")),
            "status": "refused",
            "error_code": exc.error_code,
            "message": exc.message,
            "details": exc.details,
        }
    return {"type": kind.name, "status": "done", **(output or {})}


# --- dry-run ---


def _event_from_body(body: Mapping[str, Any]) -> tuple[OutboxEvent, str | None]:
    """An unsaved ``OutboxEvent`` built from a JSON body (for dry-runs of events that never happened)."""
    if not isinstance(body, Mapping):
        raise ValidationFailed(details={"event": ["Must be an object."]})
    errors: dict[str, list[str]] = {}
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        errors["event_type"] = ["Required: the event type, e.g. TaskStateChanged."]
    payload = body.get("payload", {})
    if not isinstance(payload, dict):
        errors["payload"] = ["Must be an object."]
    depth = body.get("depth", 0)
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        errors["depth"] = ["Must be a non-negative integer."]
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
    actor_role = body.get("actor_role")
    event = OutboxEvent(
        event_type=str(event_type),
        aggregate_type=str(aggregate_type),
        aggregate_id=aggregate_uuid,
        sequence=0,
        actor_id=body.get("actor_id") if isinstance(body.get("actor_id"), int) else None,
        correlation_id=str(body.get("correlation_id") or "dry-run"),
        depth=depth,
        payload=payload,
    )
    return event, actor_role if isinstance(actor_role, str) else None


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
    answer: dict[str, Any] = {
        "trigger_id": trigger.pk,
        "trigger": trigger.name,
        "enabled": trigger.enabled,
        "event_id": str(event.id) if event.pk and not event._state.adding else None,
        "event_type": event.event_type,
        "event_type_matches": event.event_type == trigger.event_type,
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
