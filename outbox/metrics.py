"""The outbox's Prometheus metrics: dispatch outcomes and commit-to-dispatch lag.

The backlog gauges (pending, processing, dead, oldest pending age) are read from the database at scrape
time by ``ops.metrics``, so they are right whichever process serves the scrape.
"""

from prometheus_client import Counter, Gauge, Histogram

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

# The async tier's long-polls (outbox.api.feed_async): how many wait now in each process, and how many
# were refused at a cap (reason: user, process).
EVENT_FEED_WAITERS = Gauge(
    "event_feed_waiters",
    "Long-polls waiting on the event feed now (async tier, summed over live processes).",
    multiprocess_mode="livesum",
)
EVENT_FEED_WAITS_REFUSED = Counter(
    "event_feed_waits_refused_total",
    "Long-polls refused at a cap, by reason (user: TOO_MANY_WAITS, process: FEED_BUSY).",
    ["reason"],
)
