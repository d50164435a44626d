"""The admin index dashboard: the operational statistics, drawn as SVG bar charts (geometry only here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from workflow.models import ActionPlanState, TaskState

from .stats import (
    action_plan_state_counts,
    automation_counts,
    outbox_backlog,
    recent_alerts,
    sla_counts,
    task_state_counts,
)

BAR_MAX_WIDTH = 260  # px: the longest bar of a chart


@dataclass(frozen=True)
class Bar:
    label: str
    value: int | float
    width: int  # px, proportional to the chart's largest value
    y: int  # px, top of the bar in the chart's SVG
    css: str


def bar_chart(items: list[tuple[str, int | float, str]], *, row_height: int = 22) -> dict[str, Any]:
    """Geometry for a horizontal SVG bar chart (the template only draws it): ``(label, value, css class)``."""
    peak = max((value for _, value, _ in items), default=0) or 1
    bars = [
        Bar(label, value, round(BAR_MAX_WIDTH * value / peak) if value else 0, index * row_height, css)
        for index, (label, value, css) in enumerate(items)
    ]
    return {"bars": bars, "height": max(len(bars), 1) * row_height, "row_height": row_height}


def dashboard_data(*, now: datetime | None = None) -> dict[str, Any]:
    """Everything the admin index dashboard shows, global scope (the admin is for staff)."""
    now = now or timezone.now()
    tasks = task_state_counts()
    plans = action_plan_state_counts()
    backlog = outbox_backlog(now=now)
    sla = sla_counts(now=now)
    automation = automation_counts(now=now)
    return {
        "generated_at": now,
        "tasks": bar_chart([(TaskState(state).label, n, f"state-{state}") for state, n in tasks.items()]),
        "task_total": sum(tasks.values()),
        "plans": bar_chart(
            [(ActionPlanState(state).label, n, f"state-{state}") for state, n in plans.items()]
        ),
        "sla": sla,
        "sla_chart": bar_chart(
            [
                ("Running", sla["running"], "sla-running"),
                ("At risk", sla["at_risk"], "sla-at-risk"),
                ("Breached", sla["breached"], "sla-breached"),
            ]
        ),
        "outbox": backlog,
        "outbox_chart": bar_chart(
            [
                ("Pending", backlog.pending, "outbox-pending"),
                ("Processing", backlog.processing, "outbox-processing"),
                ("Dead", backlog.dead, "outbox-dead"),
            ]
        ),
        "automation": automation,
        "alerts": recent_alerts(),
    }
