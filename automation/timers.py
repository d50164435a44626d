"""Durable timers of timed triggers: set, cancel, claim when due, fire, and arm the next one.

A timed trigger (``wait_minutes`` set) that matches an event does not act: the engine calls
``timer_set`` in the dispatcher's handler transaction, so the timer row commits with the ledger row of
the event that set it. An event whose type is in a pending timer's ``unless`` list, for the same
aggregate, cancels it (``timers_cancel_for``, same transaction as that event's handling).

Firing. ``timers_fire_due`` claims due rows with ``polaris.leases.claim_due`` (``SELECT … FOR UPDATE SKIP
LOCKED``, partial index on the pending rows) and, in the same short transaction, marks them ``fired`` and
writes one ``TimerFired`` outbox event per timer (``outbox.append.events_append``; aggregate
``trigger_timer``, the timer's id, sequence 1: the outbox's unique stream position makes a second firing of
one timer impossible). The engine handles ``TimerFired`` like any event, under the dispatch ledger: it
re-checks the trigger's predicate against the aggregate's current facts and runs the actions
(``automation.engine``). No lease: the claim's row locks live only as long as that transaction, which
``TIMER_CLAIM_TIMEOUT_SECONDS`` bounds server-side (a worker killed mid-claim loses its connection and
PostgreSQL releases the rows at once).

On time. After every change that commits, and after every firing run, the next due timer is *armed*: a
``automation.timers_fire`` message with a Celery ``eta`` at its due time, if it falls within
``TIMER_ARM_HORIZON_SECONDS`` (farther ones are armed by the beat sweep once they come that close).
Workers arm at start (``worker_ready``); beat's sweep every ``TIMER_SWEEP_INTERVAL_SECONDS`` fires
what is due and arms again, the safety net for lost messages and broker outages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from automation.metrics import AUTOMATION_TIMER_FIRE_LATENESS, AUTOMATION_TIMERS
from outbox.append import NewEvent, events_append
from outbox.events import EventContext
from outbox.models import OutboxEvent
from polaris.celery import app as celery_app
from polaris.leases import claim_due
from polaris.sql.session import transaction_settings
from sla.calendar import Calendar, add_working_minutes
from workflow.events import action_plan_facts, task_facts
from workflow.models import ActionPlan, Task

from .models import Trigger, TriggerTimer

logger = logging.getLogger("automation.timers")

TIMER_FIRED = "TimerFired"
TIMER_AGGREGATE = "trigger_timer"
FIRE_TASK_NAME = "automation.timers_fire"
ARMED_KEY = "polaris:timers:armed-ms"
PENDING = str(TriggerTimer.State.PENDING.value)
FIRED = str(TriggerTimer.State.FIRED.value)
CANCELLED = str(TriggerTimer.State.CANCELLED.value)
# How a timer that fell due ended, in ``automation_timers_total{state}``, by its ``TimerFired`` execution's
# outcome: ``fired`` only when its trigger acted (its actions ran, one refused or not). A late ``unless``
# event found at fire time ends it as ``cancelled`` (``timer_cancel_late``).
TIMER_CANCELLED = "cancelled"
TIMER_ENDS = {"matched": "fired", "refused": "fired", "not_matched": "not_matched", "error": "error"}
# What a task event says about the task now (the names a predicate re-checks at fire time).
_TASK_FACTS = ("task_type", "service_area", "priority")


def timer_due_at(*, trigger: Trigger, start: datetime) -> datetime:
    """When a timer of ``trigger`` set at ``start`` falls due: business minutes on its calendar, or
    wall-clock minutes when it names none."""
    calendar = None
    if trigger.wait_calendar_id is not None:
        calendar = Calendar.from_definition(trigger.wait_calendar.definition())  # type: ignore[union-attr]
    return add_working_minutes(start, trigger.wait_minutes or 0, calendar)


def timer_set(*, trigger: Trigger, event: OutboxEvent) -> TriggerTimer:
    """A pending timer for ``trigger`` on ``event``'s aggregate (inside the handler's transaction)."""
    timer = TriggerTimer.objects.create(
        trigger=trigger,
        trigger_version=trigger.version,
        event=event,
        aggregate_type=event.aggregate_type,
        aggregate_id=event.aggregate_id,
        task_id=event.aggregate_id if event.aggregate_type == "task" else None,
        unless=list(trigger.unless or []),
        due_at=timer_due_at(trigger=trigger, start=event.occurred_at),
    )
    due_at = timer.due_at
    transaction.on_commit(lambda: _after_set(due_at), robust=True)
    return timer


def _after_set(due_at: datetime) -> None:
    AUTOMATION_TIMERS.labels(state="scheduled").inc()
    timers_arm(due_at=due_at)


def timers_cancel_for(event: OutboxEvent) -> int:
    """Cancel the pending timers of ``event``'s aggregate that list its type in ``unless``."""
    cancelled = TriggerTimer.objects.filter(
        state=PENDING,
        aggregate_id=event.aggregate_id,
        aggregate_type=event.aggregate_type,
        unless__contains=[event.event_type],
    ).update(state=CANCELLED, cancelled_at=timezone.now(), cancelled_by=event)
    if cancelled:
        transaction.on_commit(lambda: AUTOMATION_TIMERS.labels(state=TIMER_CANCELLED).inc(cancelled))
    return cancelled


def timer_cancel_late(*, timer: TriggerTimer, by: OutboxEvent) -> None:
    """Cancel a timer that fell due although ``by``, one of its ``unless`` events, happened before its
    due time (committed, but not handled yet when the timer was claimed). Counted by the caller."""
    TriggerTimer.objects.filter(pk=timer.pk).update(
        state=CANCELLED, cancelled_by=by, cancelled_at=by.occurred_at
    )


def timer_ended_count(*, state: str) -> None:
    """Count how a timer that fell due ended (after its handling committed; once per timer)."""
    AUTOMATION_TIMERS.labels(state=state).inc()


def timers_resnapshot(*, trigger: Trigger) -> int:
    """Keep a changed trigger's pending timers in step with its ``unless`` list."""
    return TriggerTimer.objects.filter(trigger=trigger, state=PENDING).update(unless=list(trigger.unless))


def timer_unless_happened(timer: TriggerTimer) -> OutboxEvent | None:
    """An ``unless`` event on the timer's aggregate between its event and its due time, if any — also
    one committed but not yet dispatched when the timer was claimed (dispatch lag must not let it fire)."""
    if not timer.unless:
        return None
    source = timer.event
    return (
        OutboxEvent.objects.filter(
            aggregate_type=timer.aggregate_type,
            aggregate_id=timer.aggregate_id,
            sequence__gt=source.sequence,
            event_type__in=timer.unless,
            occurred_at__lte=timer.due_at,
        )
        .order_by("sequence")
        .first()
    )


def timer_names_now(timer: TriggerTimer, names: dict[str, Any]) -> dict[str, Any]:
    """The predicate's names at fire time: those of the event that set the timer, with the aggregate's
    current facts laid over them (a task's state as ``new_state``, its type, area and priority, and the
    same in ``payload``). Aggregates other than tasks and plans keep the event's names."""
    facts: dict[str, Any] | None = None
    if timer.aggregate_type == Task.aggregate_type:
        task = Task.objects.filter(pk=timer.aggregate_id).first()
        if task is not None:
            facts = {**task_facts(task), "new_state": task.state}
    elif timer.aggregate_type == ActionPlan.aggregate_type:
        plan = ActionPlan.objects.filter(pk=timer.aggregate_id).first()
        if plan is not None:
            facts = {**action_plan_facts(plan), "new_state": plan.state}
    if facts is None:
        return names
    now = dict(names)
    now["payload"] = {**(names.get("payload") or {}), **facts}
    now["new_state"] = facts["new_state"]
    for key in _TASK_FACTS:
        if key in facts:
            now[key] = facts[key]
    return now


def _timer_fired_payload(row: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    payload = {
        "timer_id": str(row["id"]),
        "trigger_id": row["trigger_id"],
        "trigger_version": row["trigger_version"],
        "source_event_id": str(row["event_id"]),
        "source_event_type": row["event__event_type"],
        "source_aggregate_type": row["aggregate_type"],
        "source_aggregate_id": str(row["aggregate_id"]),
        "due_at": row["due_at"].isoformat(),
    }
    # So actions find the task and alerts their agency (automation.actions.registry._source_of).
    for key in ("task_id", "action_plan_id", "agency_id"):
        if source.get(key) is not None:
            payload[key] = source[key]
    return payload


def timers_fire_due(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Claim one batch of due timers and fire them (one transaction); returns how many fired."""
    limit = limit or settings.TIMER_FIRE_BATCH_SIZE
    with transaction.atomic():
        timeout_ms = int(settings.TIMER_CLAIM_TIMEOUT_SECONDS * 1000)
        # The claim's "lease": a stalled claim is aborted by the server and its rows are free again.
        transaction_settings(
            idle_in_transaction_session_timeout=str(timeout_ms), statement_timeout=str(timeout_ms)
        )
        claimed_at = now or timezone.now()
        rows = claim_due(
            TriggerTimer.objects.filter(state=PENDING, due_at__lte=claimed_at).values(
                "id",
                "trigger_id",
                "trigger_version",
                "event_id",
                "event__event_type",
                "event__payload",
                "event__correlation_id",
                "event__depth",
                "aggregate_type",
                "aggregate_id",
                "due_at",
            ),
            order_by="due_at",
            limit=limit,
        )
        if not rows:
            return 0
        fired_at = timezone.now()
        events_append(
            [
                NewEvent(
                    event_type=TIMER_FIRED,
                    aggregate_type=TIMER_AGGREGATE,
                    aggregate_id=row["id"],
                    sequence=1,
                    context=EventContext(
                        correlation_id=row["event__correlation_id"],
                        causation_id=row["event_id"],
                        depth=row["event__depth"],
                    ),
                    payload=_timer_fired_payload(row, row["event__payload"] or {}),
                )
                for row in rows
            ],
            occurred_at=fired_at,
        )
        TriggerTimer.objects.filter(pk__in=[row["id"] for row in rows]).update(state=FIRED, fired_at=fired_at)
        # Lateness is the firing's (due -> this commit), whatever the re-check then decides; how each
        # timer ended is counted when its TimerFired event is handled (automation.engine).
        lateness = [max((fired_at - row["due_at"]).total_seconds(), 0.0) for row in rows]
        transaction.on_commit(lambda: _observe_lateness(lateness))
    return len(rows)


def _observe_lateness(lateness: list[float]) -> None:
    for seconds in lateness:
        AUTOMATION_TIMER_FIRE_LATENESS.observe(seconds)


def timers_fire_all_due(*, budget_seconds: float | None = None) -> int:
    """Fire batches until none is due (or the time budget is spent), then arm the next timer."""
    budget = budget_seconds if budget_seconds is not None else settings.TIMER_FIRE_TIME_BUDGET_SECONDS
    started = time.monotonic()
    fired = 0
    while True:
        count = timers_fire_due()
        fired += count
        if count < settings.TIMER_FIRE_BATCH_SIZE or time.monotonic() - started > budget:
            break
    timers_arm_next()
    return fired


def timer_next_due() -> datetime | None:
    """The due time of the earliest pending timer (partial index: one row read)."""
    return (
        TriggerTimer.objects.filter(state=PENDING).order_by("due_at").values_list("due_at", flat=True).first()
    )


def timers_arm_next() -> None:
    """Arm the earliest pending timer (after a firing run, at worker start, from the sweep)."""
    due_at = timer_next_due()
    if due_at is not None:
        timers_arm(due_at=due_at, force=True)


def timers_arm(*, due_at: datetime, force: bool = False) -> bool:
    """Ask a worker to fire at ``due_at`` (a Celery ``eta``) unless an earlier arm covers it.

    Best effort, never raising: beat's sweep covers a lost or unsent message. Returns whether a message
    was sent. Coalesced in Redis: one key holds the earliest armed instant still ahead.
    """
    if not settings.TIMER_ARM_ENABLED:
        return False
    now = timezone.now()
    delay = (due_at - now).total_seconds()
    if delay > settings.TIMER_ARM_HORIZON_SECONDS:
        return False  # the sweep arms it once it is within the horizon
    due_ms = int(due_at.timestamp() * 1000)
    try:
        with celery_app.pool.acquire(block=True, timeout=0.5) as conn:
            client = getattr(conn.default_channel, "client", None)  # type: ignore[attr-defined]
            if client is not None and not force:
                armed = client.get(ARMED_KEY)
                now_ms = int(now.timestamp() * 1000)
                if armed is not None and now_ms <= int(armed) <= due_ms:
                    return False  # an earlier firing run will arm this one after it
            if client is not None:
                client.set(ARMED_KEY, due_ms, px=int(max(delay, 0) * 1000) + 1000)
            celery_app.send_task(
                FIRE_TASK_NAME,
                eta=max(due_at, now),
                expires=max(due_at, now) + timedelta(seconds=settings.TIMER_SWEEP_INTERVAL_SECONDS),
                retry=False,
                connection=conn,  # type: ignore[arg-type]
            )
    except Exception as exc:
        logger.warning("timer not armed (broker unavailable: %s); the sweep fires it", exc)
        return False
    return True


def timers_pending_count() -> int:
    return TriggerTimer.objects.filter(state=PENDING).count()
