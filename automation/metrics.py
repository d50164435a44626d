"""The automation app's Prometheus metrics: trigger evaluations, webhook deliveries, timers.

Trigger evaluations are summed in the process and published to Prometheus in batches, at most every
``_METRICS_FLUSH_SECONDS`` (a timer publishes the tail of a burst; exit publishes the rest): 50 triggers are
50 labelled increments per event, which would cost more than evaluating the 50 predicates. Per event only
the ruleset (its labels) and the outcomes other than not_matched are kept; a trigger's not_matched count is
the events its ruleset saw minus its other outcomes.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections import Counter

import prometheus_client

from .models import TriggerExecution

AUTOMATION_TRIGGER_EVALUATIONS = prometheus_client.Counter(
    "automation_trigger_evaluations_total",
    "Trigger evaluations, by trigger and outcome (matched, not_matched, error, loop_prevented).",
    ["trigger_id", "outcome"],
)
WEBHOOK_DELIVERIES = prometheus_client.Counter(
    "webhook_deliveries_total", "Webhook delivery attempts, by outcome.", ["status"]
)
AUTOMATION_TIMERS = prometheus_client.Counter(
    "automation_timers_total",
    "Timers of timed triggers: scheduled when set; then each once, as it ended: fired (its trigger acted),"
    " not_matched, error or cancelled (by an unless event, also one found only at fire time).",
    ["state"],
)
# Set by each timer sweep (every TIMER_SWEEP_INTERVAL_SECONDS); the most recent value wins across processes.
AUTOMATION_TIMERS_PENDING = prometheus_client.Gauge(
    "automation_timers_pending",
    "Timers waiting to fall due, as counted by the latest sweep.",
    multiprocess_mode="mostrecent",
)
AUTOMATION_TIMER_FIRE_LATENESS = prometheus_client.Histogram(
    "automation_timer_fire_lateness_seconds",
    "Time from a timer's due instant to its firing (the TimerFired event committed).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

NOT_MATCHED = str(TriggerExecution.Outcome.NOT_MATCHED.value)
ALREADY_DONE = "already_done"  # the (trigger, event) pair had run before: not counted again

_METRICS_FLUSH_SECONDS = 0.5
_metrics_lock = threading.Lock()
_pending_seen: Counter[tuple[str, ...]] = Counter()
_pending_outcomes: list[tuple[str, str]] = []
_last_flush = time.monotonic()
_flush_timer: threading.Timer | None = None


def automation_metrics_add(labels: tuple[str, ...], outcomes: list[tuple[str, str]]) -> None:
    """Count one event seen by the ruleset ``labels``, with its outcomes other than not_matched."""
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
        if outcome != ALREADY_DONE:
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
