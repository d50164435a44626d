"""The admin index dashboard: the operational statistics, drawn as SVG bar charts (geometry only here).

Every bar is a link to the admin list it counts, filtered the same way: tasks and plans by state, tasks by
SLA status (the task list's SLA filter applies the API's ``sla_status`` rule), outbox events by status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse
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
    url: str = ""  # the filtered admin list the bar counts


# ``(label, value, css class)`` or ``(label, value, css class, url of the list it counts)``.
BarItem = tuple[str, int | float, str] | tuple[str, int | float, str, str]


def bar_chart(items: Sequence[BarItem], *, row_height: int = 22) -> dict[str, Any]:
    """Geometry for a horizontal SVG bar chart (the template only draws it)."""
    peak = max((item[1] for item in items), default=0) or 1
    bars = []
    for index, item in enumerate(items):
        label, value, css = item[0], item[1], item[2]
        url = item[3] if len(item) == 4 else ""
        width = round(BAR_MAX_WIDTH * value / peak) if value else 0
        bars.append(Bar(label, value, width, index * row_height, css, url))
    return {"bars": bars, "height": max(len(bars), 1) * row_height, "row_height": row_height}


def admin_list_url(model: str, **filters: str) -> str:
    """The admin changelist of ``app_label.model``, filtered with ``filters`` as query parameters."""
    app_label, model_name = model.split(".")
    query = "&".join(f"{name}={value}" for name, value in filters.items())
    return reverse(f"admin:{app_label}_{model_name}_changelist") + (f"?{query}" if query else "")


def _task_list(**filters: str) -> str:
    return admin_list_url("workflow.task", **filters)


def _event_list(**filters: str) -> str:
    return admin_list_url("outbox.outboxevent", **filters)


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
        "tasks": bar_chart(
            [
                (TaskState(state).label, n, f"state-{state}", _task_list(state__exact=state))
                for state, n in tasks.items()
            ]
        ),
        "task_total": sum(tasks.values()),
        "task_list_url": _task_list(),
        "plans": bar_chart(
            [
                (
                    ActionPlanState(state).label,
                    n,
                    f"state-{state}",
                    admin_list_url("workflow.actionplan", state__exact=state),
                )
                for state, n in plans.items()
            ]
        ),
        "sla": sla,
        "sla_urls": {status: _task_list(sla_status=status) for status in ("at_risk", "breached", "paused")},
        "sla_chart": bar_chart(
            [
                # The stats count at-risk records among the running; the bar, like its list (the API's
                # ``sla_status=running``), counts those running and not at risk.
                ("Running", sla["running"] - sla["at_risk"], "sla-running", _task_list(sla_status="running")),
                ("At risk", sla["at_risk"], "sla-at-risk", _task_list(sla_status="at_risk")),
                ("Breached", sla["breached"], "sla-breached", _task_list(sla_status="breached")),
            ]
        ),
        "outbox": backlog,
        "outbox_chart": bar_chart(
            [
                # "Pending" counts every undispatched event, the claimed ones too (ops.stats.UNDONE).
                ("Pending", backlog.pending, "outbox-pending", _event_list(status__in="pending,processing")),
                (
                    "Processing",
                    backlog.processing,
                    "outbox-processing",
                    _event_list(status__exact="processing"),
                ),
                ("Dead", backlog.dead, "outbox-dead", _event_list(status__exact="dead")),
            ]
        ),
        "dead_list_url": _event_list(status__exact="dead"),
        "automation": automation,
        "alerts": recent_alerts(),
    }
