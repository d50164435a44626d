"""The workflow app's Prometheus metric: transitions attempted (name and labels as the specification says)."""

from prometheus_client import Counter

WORKFLOW_TRANSITIONS = Counter(
    "workflow_transition_total",
    "State machine transitions attempted, by entity and result.",
    ["entity_type", "result"],
)
