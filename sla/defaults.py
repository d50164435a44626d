"""The SLA defaults, written once: the built-in configs and the warning/pause defaults every config gets.

``sla.models`` uses these for the field defaults, ``sla.configs`` when a caller leaves them out. The data
migration ``0002_default_sla_configs`` keeps its own frozen copy (migrations must not follow later code);
``tests/sla/test_config_matching.py`` holds the two equal.
"""

from __future__ import annotations

from workflow.models import TaskState

# (name, task_type, target_minutes): intake 1 h, assessment 4 h, review 2 h; any service area, 24x7.
DEFAULT_CONFIGS: tuple[tuple[str, str, int], ...] = (
    ("Intake (default)", "intake", 60),
    ("Assessment (default)", "assessment", 240),
    ("Review (default)", "review", 120),
)

DEFAULT_WARNING_PERCENTAGES: tuple[int, ...] = (75,)
DEFAULT_PAUSE_STATES: tuple[str, ...] = (TaskState.BLOCKED.value,)


def default_warning_percentages() -> list[int]:
    """A fresh list (JSON fields must not share a mutable default)."""
    return list(DEFAULT_WARNING_PERCENTAGES)


def default_pause_states() -> list[str]:
    return list(DEFAULT_PAUSE_STATES)
