"""``{% task_sla_panel task %}`` and ``{% task_timers_panel task %}``: the SLA and timer panels of the admin
task page.

They live on the top floor because they read ``sla`` and ``automation``, which ``workflow`` (whose admin
draws the rest of the page) may not import. At risk is the one rule (``sla.selectors.sla_at_risk_q``), the
same the API's ``?sla_status=at_risk`` and the dashboard use.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone

from automation.models import TriggerTimer
from polaris.accounts.admin_site import admin_viewable
from sla.models import SLARecord, SLARecordStatus
from sla.selectors import sla_at_risk_q, sla_block

register = template.Library()

TIMERS_LIMIT = 20  # newest first; the timer list in admin has the rest


def _viewable(context: template.Context, model: Any) -> bool:
    request = context.get("request")
    return request is not None and admin_viewable(request, model)


@register.inclusion_tag("ops/task_sla.html", takes_context=True)
def task_sla_panel(context: template.Context, task: Any) -> dict[str, Any]:
    """The task's SLA clock: status, due time, time left; at risk and breached highlighted."""
    block = sla_block(task, None)
    if block is None:
        return {"sla": None}
    record = task.sla_record
    at_risk = (
        record.status == SLARecordStatus.RUNNING
        and SLARecord.objects.filter(pk=record.pk).filter(sla_at_risk_q(now=timezone.now())).exists()
    )
    breached = record.status == SLARecordStatus.BREACHED
    remaining = block["remaining_seconds"]
    return {
        "sla": block,
        "record": record,
        "at_risk": at_risk,
        "breached": breached,
        "highlight": "breached" if breached else "at-risk" if at_risk else record.status,
        "minutes_left": None if remaining is None else max(round(remaining / 60), 0),
        "minutes_past": None if remaining is None else max(round(-remaining / 60), 0),
        "record_url": (
            reverse("admin:sla_slarecord_change", args=[record.pk]) if _viewable(context, SLARecord) else None
        ),
    }


@register.inclusion_tag("ops/task_timers.html", takes_context=True)
def task_timers_panel(context: template.Context, task: Any) -> dict[str, Any]:
    """The task's timed-trigger timers (pending, fired, cancelled), latest due first, bounded."""
    timers = list(
        TriggerTimer.objects.filter(task_id=task.pk)
        .select_related("trigger")
        .order_by("-due_at", "id")[: TIMERS_LIMIT + 1]
    )
    return {
        "timers": timers[:TIMERS_LIMIT],
        "timers_more": len(timers) > TIMERS_LIMIT,
        "timers_url": (
            reverse("admin:automation_triggertimer_changelist") + f"?task__id__exact={task.pk}"
            if _viewable(context, TriggerTimer)
            else None
        ),
    }
