"""Prometheus metrics, defined once. Names and labels follow the specification.

Gauges that describe the database (tasks per state, outbox backlog, SLA records at risk) are computed
at scrape time by a collector, so they are right whichever process serves the scrape.
"""

from prometheus_client import Counter, Gauge, Histogram

WORKFLOW_TRANSITIONS = Counter(
    "workflow_transition_total",
    "State machine transitions attempted, by entity and result.",
    ["entity_type", "result"],
)
OUTBOX_EVENTS_PROCESSED = Counter(
    "outbox_events_processed_total",
    "Outbox events handled by the dispatcher, by event type and outcome.",
    ["event_type", "status"],
)
OUTBOX_DISPATCH_LAG = Histogram(
    "outbox_dispatch_lag_seconds",
    "Time from an event's commit to the end of its dispatch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
AUTOMATION_TRIGGER_EVALUATIONS = Counter(
    "automation_trigger_evaluations_total",
    "Trigger evaluations, by trigger and outcome (matched, not_matched, error, loop_prevented).",
    ["trigger_id", "outcome"],
)
SLA_RECORDS_BREACHED = Counter("sla_records_breached_total", "SLA records marked breached.")
WEBHOOK_DELIVERIES = Counter("webhook_deliveries_total", "Webhook delivery attempts, by outcome.", ["status"])
AUTOMATION_TIMERS = Counter(
    "automation_timers_total",
    "Timers of timed triggers: scheduled when set; then each once, as it ended: fired (its trigger acted),"
    " not_matched, error or cancelled (by an unless event, also one found only at fire time).",
    ["state"],
)
# Set by each timer sweep (every TIMER_SWEEP_INTERVAL_SECONDS); the most recent value wins across processes.
AUTOMATION_TIMERS_PENDING = Gauge(
    "automation_timers_pending",
    "Timers waiting to fall due, as counted by the latest sweep.",
    multiprocess_mode="mostrecent",
)
AUTOMATION_TIMER_FIRE_LATENESS = Histogram(
    "automation_timer_fire_lateness_seconds",
    "Time from a timer's due instant to its firing (the TimerFired event committed).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
