"""The automation engine: the dispatcher handler that runs triggers and records what they did.

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

Speed. Enabled triggers are loaded per event type and cached per process (``automation.ruleset``);
they are indexed by their guard (a first clause ``name == "x"``/``name in (...)``), so an event
evaluates only the triggers that can match it; evaluation counts are published to Prometheus in
batches (``automation.metrics``). The dry-run that explains a trigger is ``automation.dry_run``.

Loops. Events written by actions carry ``depth + 1``. For an event at ``AUTOMATION_MAX_DEPTH`` or deeper
no matching trigger fires: its execution is recorded ``loop_prevented`` and a critical alert is raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction

from outbox.models import OutboxEvent
from polaris.accounts.models import User
from polaris.errors import ConcurrentModification, DomainError, ValidationFailed

from .actions.registry import ACTION_TYPES, ActionContext
from .alerts import alert_raise
from .metrics import ALREADY_DONE, automation_metrics_add
from .models import Alert, Trigger, TriggerExecution, TriggerTimer
from .predicates import EVALUATION_ERRORS, PAYLOAD_NAMES, PredicateError, predicate_compile
from .ruleset import ruleset_get, scope_admits, unless_types_get
from .timers import (
    TIMER_CANCELLED,
    TIMER_ENDS,
    TIMER_FIRED,
    timer_cancel_late,
    timer_ended_count,
    timer_names_now,
    timer_set,
    timer_unless_happened,
    timers_cancel_for,
)

logger = logging.getLogger("automation.engine")

HANDLER_NAME = "automation"
Outcome = TriggerExecution.Outcome
# Plain strings for the hot loop (enum members hash through a Python-level __hash__).
MATCHED, NOT_MATCHED, REFUSED, ERROR, LOOP_PREVENTED, SCHEDULED = (
    str(Outcome.MATCHED.value),
    str(Outcome.NOT_MATCHED.value),
    str(Outcome.REFUSED.value),
    str(Outcome.ERROR.value),
    str(Outcome.LOOP_PREVENTED.value),
    str(Outcome.SCHEDULED.value),
)
_ONCE_CONSTRAINT = "trigger_execution_once_per_event"


def event_names(event: OutboxEvent, *, actor_role: str | None = None, with_actor_role: bool = True) -> dict:
    """The names a predicate sees for ``event``. ``actor_role`` costs a query, so it is looked up only
    when some predicate uses it (``system`` for events without a human actor)."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    names: dict[str, Any] = {
        "event_type": event.event_type,
        "aggregate_type": event.aggregate_type,
        **{name: payload.get(name) for name in PAYLOAD_NAMES},
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


def automation_handle_event(event: OutboxEvent) -> None:
    """Run the enabled triggers for ``event.event_type`` in position order (the ``automation`` handler)."""
    if event.event_type == TIMER_FIRED:
        timer_fired_handle(event)
        return
    if event.event_type in unless_types_get():
        timers_cancel_for(event)  # before this event sets timers of its own
    ruleset = ruleset_get(event.event_type)
    if not ruleset.entries:
        return
    names = event_names(event, with_actor_role=ruleset.needs_role)
    payload = names["payload"]
    # Outcomes other than not_matched; not_matched is every trigger of the ruleset minus these.
    outcomes: list[tuple[str, str]] = []
    too_deep = event.depth >= settings.AUTOMATION_MAX_DEPTH
    entries = ruleset.entries

    with transaction.atomic(savepoint=False):
        for position in ruleset.candidates(names):
            trigger, predicate, error, label, scope = entries[position]
            if not scope_admits(scope, payload):
                continue  # another agency's event: this trigger does not see it
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
            elif trigger.wait_minutes is not None:
                outcome = _schedule(trigger, event, started)
            else:
                outcome = _fire(trigger, event, names, started)
            outcomes.append((label, outcome or ALREADY_DONE))
        if settings.AUTOMATION_RECORD_NOT_MATCHED:
            done = {label for label, _ in outcomes}
            rows = [
                TriggerExecution(
                    trigger=entry.trigger,
                    trigger_version=entry.trigger.version,
                    event=event,
                    outcome=NOT_MATCHED,
                )
                for entry in entries
                if entry.label not in done
            ]
            TriggerExecution.objects.bulk_create(rows, ignore_conflicts=True)

    # Counted after commit, so a rolled-back (retried) event is not counted twice.
    labels = ruleset.labels
    transaction.on_commit(lambda: automation_metrics_add(labels, outcomes))


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
                trigger_version=trigger.version,
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
                trigger_version=trigger.version,
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


def _schedule(trigger: Trigger, event: OutboxEvent, started: float) -> str | None:
    """A timed trigger matched: set its timer (and say so in the execution log), in one savepoint."""
    try:
        with transaction.atomic():
            timer = timer_set(trigger=trigger, event=event)
            TriggerExecution.objects.create(
                trigger=trigger,
                trigger_version=trigger.version,
                event=event,
                outcome=SCHEDULED,
                action_results=[{"timer_id": str(timer.pk), "due_at": timer.due_at.isoformat()}],
                duration_ms=_elapsed_ms(started),
            )
    except IntegrityError as exc:
        if _is_duplicate(exc) or "trigger_timer_once_per_event" in str(exc):
            return None
        raise
    return SCHEDULED


def timer_fired_handle(event: OutboxEvent) -> None:
    """A timer fell due: re-check the trigger against the aggregate's facts now, then act (or not).

    Not matched when the trigger is disabled, when an ``unless`` event happened before the due time but
    was not handled yet (the timer is then marked cancelled), or when the predicate no longer holds.
    The timer's end is counted once, after commit: ``fired`` only when its trigger acted.
    """
    timer = TriggerTimer.objects.select_related("trigger", "event").filter(pk=event.aggregate_id).first()
    if timer is None:
        return  # its trigger was deleted since (the timer went with it)
    trigger, started = timer.trigger, time.perf_counter()
    ended: str | None  # how the timer ended, for automation_timers_total
    with transaction.atomic(savepoint=False):
        late = timer_unless_happened(timer)
        if late is not None:
            timer_cancel_late(timer=timer, by=late)
            reason = f"{late.event_type} happened before the due time (event {late.id})."
            outcome = _record(trigger, event, NOT_MATCHED, started, error=reason)
            ended = TIMER_CANCELLED
        else:
            outcome = _timer_recheck(timer, trigger, event, started)
            ended = TIMER_ENDS.get(outcome or "")
    label = str(trigger.pk)
    done = [] if outcome == NOT_MATCHED else [(label, outcome or ALREADY_DONE)]
    transaction.on_commit(lambda: automation_metrics_add((label,), done))
    if outcome is not None and ended is not None:  # None: handled before, and counted then
        transaction.on_commit(lambda: timer_ended_count(state=ended))


def _timer_recheck(timer: TriggerTimer, trigger: Trigger, event: OutboxEvent, started: float) -> str | None:
    """The trigger of a timer that fell due, evaluated against the aggregate's current facts."""
    if not trigger.enabled:
        return _record(trigger, event, NOT_MATCHED, started, error="The trigger is disabled.")
    source_names = event_names(timer.event, with_actor_role="actor_role" in trigger.predicate)
    names = timer_names_now(timer, source_names)
    try:
        matched = predicate_compile(trigger.predicate or "").evaluate(names)
        error = ""
    except PredicateError as exc:
        matched, error = False, str(exc)
    except EVALUATION_ERRORS as exc:
        matched, error = False, f"Evaluation failed: {exc}"
    if error:
        return _record(trigger, event, ERROR, started, error=error)
    if not matched:
        return _record(trigger, event, NOT_MATCHED, started, error="The predicate no longer holds.")
    return _fire(trigger, event, names, started)


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
                trigger_version=trigger.version,
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
        trigger_version=trigger.version,
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
        if kind is None:  # only reachable if a row bypassed the trigger rules or a type was removed
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
