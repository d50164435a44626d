"""Backtest: how often would a trigger have matched (and a timed one fired) over the stored history?

Reads only, in a ``READ ONLY`` transaction (nothing can be written, not even by a bug), with a
server-side ``statement_timeout``. Bounded: at most ``BACKTEST_MAX_EVENTS`` events are read, the read
stops after ``BACKTEST_MAX_SECONDS`` or once the process has grown by ``BACKTEST_MAX_MEMORY_MB`` (the
answer then says ``truncated`` and why, and counts what it covered), each evaluation runs under the
predicate budget (``automation.predicates``), and the window is at most ``BACKTEST_MAX_DAYS`` long
(``until`` defaults to now). ``BACKTEST_MAX_SECONDS`` stays below the web worker's timeout.

Speed: ``automation.backtest_scan`` (only the columns the predicate reads; each distinct fact tuple
evaluated once, grouped in PostgreSQL for untimed triggers).

Timed triggers: a match sets a would-be timer due ``wait_minutes`` later (business time on its
calendar). It counts as *cancelled* when an ``unless`` event happened to the same aggregate before it
fell due, as *fired* when it fell due before now and the predicate still held — re-checked with the
aggregate's state then (``new_state`` of its latest event before the due time), else as pending.
Per-day counts are by UTC day: of the event for ``matched``, of the due time for ``fired``/``cancelled``.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from outbox.models import OutboxEvent
from polaris.errors import ValidationFailed
from polaris.sql.session import transaction_read_only, transaction_settings

from .actions.registry import ACTION_TYPES, ActionContext
from .backtest_scan import CHUNK, BacktestLimits, backtest_scan
from .engine import event_names
from .models import Trigger
from .predicates import PredicateError, predicate_compile
from .timers import timer_due_at


def trigger_backtest(*, trigger: Trigger, since: datetime, until: datetime | None = None) -> dict[str, Any]:
    """Count the events of ``[since, until)`` the trigger would have matched, per UTC day, with a sample.

    Without ``until``: until now."""
    until = until or timezone.now()
    if until <= since:
        raise ValidationFailed(details={"until": ["Must be after since."]})
    if until - since > timedelta(days=settings.BACKTEST_MAX_DAYS):
        raise ValidationFailed(details={"until": [f"At most {settings.BACKTEST_MAX_DAYS} days after since."]})
    try:
        compiled = predicate_compile(trigger.predicate or "")
    except PredicateError as exc:
        raise ValidationFailed(details={"predicate": [str(exc)]}) from None
    started = time.monotonic()
    with transaction.atomic():
        transaction_read_only()
        transaction_settings(statement_timeout=str(int(settings.BACKTEST_MAX_SECONDS * 1000) + 5000))
        scan = backtest_scan(trigger, compiled, since, until, started)
        timed = _timed(trigger, compiled, scan, started) if trigger.wait_minutes is not None else None
        sample = _sample(trigger, scan["sample_ids"], timed)
    days: dict[date, dict[str, int]] = defaultdict(lambda: {"matched": 0})
    for day, count in scan["per_day"].items():
        days[day]["matched"] = count
    if timed is not None:
        for day, counts in timed["per_day"].items():
            for key, count in counts.items():
                days[day][key] = count
    return {
        "trigger_id": trigger.pk,
        "since": since,
        "until": until,
        "timed": timed is not None,
        "evaluated": scan["evaluated"],
        "matched": scan["matched"],
        "fired": timed["fired"] if timed else None,
        "cancelled": timed["cancelled"] if timed else None,
        "evaluation_errors": scan["errors"],
        "days": [
            {"date": day, **({"fired": 0, "cancelled": 0} if timed else {}), **counts}
            for day, counts in sorted(days.items())
        ],
        "sample": sample,
        "truncated": scan["truncated"],
        "truncated_reason": scan["truncated_reason"],
        "read_until": scan["read_until"],
        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
    }


def _timed(trigger: Trigger, compiled: Any, scan: dict, started: float) -> dict:
    """Would each match's timer have fired, been cancelled, or still be pending? Past the backtest's
    time or memory bound the remaining matches are left out and the scan is marked truncated."""
    now = timezone.now()
    limits = BacktestLimits(started)
    unless = set(trigger.unless or [])
    later: dict[uuid.UUID, list[tuple]] = defaultdict(list)
    details: dict[uuid.UUID, tuple] = {}
    match_ids = [uuid.UUID(event_id) for event_id, _ in scan["matches"]]
    for start in range(0, len(match_ids), CHUNK):
        for row in OutboxEvent.objects.filter(id__in=match_ids[start : start + CHUNK]).values_list(
            "id", "aggregate_id", "sequence", "occurred_at"
        ):
            details[row[0]] = row[1:]
    aggregate_ids = list({aggregate_id for aggregate_id, _, _ in details.values()})
    for start in range(0, len(aggregate_ids), CHUNK):
        chunk = aggregate_ids[start : start + CHUNK]
        rows = (
            OutboxEvent.objects.filter(aggregate_id__in=chunk)
            .annotate(k_new_state=KeyTextTransform("new_state", "payload"))
            .values_list("aggregate_id", "sequence", "occurred_at", "event_type", "k_new_state")
            .order_by("aggregate_id", "sequence")
        )
        for aggregate_id, sequence, occurred_at, event_type, new_state in rows.iterator(chunk_size=CHUNK):
            later[aggregate_id].append((sequence, occurred_at, event_type, new_state))
    fired = cancelled = 0
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: {"fired": 0, "cancelled": 0})
    outcomes: dict[uuid.UUID, dict[str, Any]] = {}
    for event_text, names in scan["matches"]:
        if stopped := limits.exceeded():
            scan["truncated"], scan["truncated_reason"] = True, scan["truncated_reason"] or stopped
            break
        event_id = uuid.UUID(event_text)
        aggregate_id, sequence, occurred_at = details[event_id]
        due = timer_due_at(trigger=trigger, start=occurred_at)
        state, new_state, cancelled_by = "pending", names.get("new_state"), None
        for other_sequence, other_at, other_type, other_state in later.get(aggregate_id, ()):
            if other_sequence <= sequence or other_at > due:
                continue
            if other_type in unless:
                cancelled_by = other_type
                break
            if other_state is not None:
                new_state = other_state
        if cancelled_by is not None:
            state = "cancelled"
        elif due <= now:
            current = {**names, "new_state": new_state}
            current["payload"] = {**(names.get("payload") or {}), "new_state": new_state}
            try:
                state = "fired" if compiled.evaluate(current) else "not_matched"
            except PredicateError:
                state = "error"
        if state in ("fired", "cancelled"):
            per_day[due.date()][state] += 1
            fired += state == "fired"
            cancelled += state == "cancelled"
        if event_id in scan["sample_ids"]:
            outcomes[event_id] = {"timer": state, "due_at": due.isoformat(), "cancelled_by": cancelled_by}
    return {"fired": fired, "cancelled": cancelled, "per_day": per_day, "outcomes": outcomes}


def _sample(trigger: Trigger, event_ids: list[uuid.UUID], timed: dict | None) -> list[dict[str, Any]]:
    """Up to ``SAMPLE_SIZE`` matches with what the actions would have done (templates filled)."""
    events = {event.id: event for event in OutboxEvent.objects.filter(id__in=event_ids)}
    sample = []
    for event_id in event_ids:
        event = events[event_id]
        context = ActionContext(event=event, names=event_names(event), trigger=trigger)
        actions = []
        for action in trigger.actions:
            kind = ACTION_TYPES.get(action.get("type", ""))
            if kind is not None:
                actions.append(kind.preview(context, action.get("params") or {}))
        entry = {
            "event_id": str(event.id),
            "occurred_at": event.occurred_at.isoformat(),
            "aggregate_type": event.aggregate_type,
            "aggregate_id": str(event.aggregate_id),
            "actions": actions,
        }
        if timed is not None:
            entry.update(timed["outcomes"].get(event_id, {}))
        sample.append(entry)
    return sample
