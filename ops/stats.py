"""Operational statistics: workload per state, outbox backlog, SLA and automation health.

One set of queries feeds the stats API, the admin dashboard and the scrape-time Prometheus collector.
Every count is an aggregate over an indexed column (or a partial index on the rows still to do), so the
cost follows the backlog, not the history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from automation.models import Alert, TriggerExecution, WebhookDelivery
from outbox.models import OutboxEvent
from polaris.access import agency_scope
from polaris.accounts.models import User
from sla.models import SLARecord, SLARecordStatus
from sla.selectors import sla_at_risk_q
from workflow.models import ActionPlan, ActionPlanState, Task, TaskState

UNDONE = (OutboxEvent.Status.PENDING, OutboxEvent.Status.PROCESSING)
RECENT_WINDOW = timedelta(hours=24)


def _state_counts(queryset: QuerySet, states: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(states, 0)
    for row in queryset.order_by().values("state").annotate(n=Count("pk")):
        counts[row["state"]] = row["n"]
    return counts


def task_state_counts(*, agency_id: Any = None) -> dict[str, int]:
    """Tasks per state, every state present (zero when none)."""
    queryset = Task.objects.all() if agency_id is None else Task.objects.filter(agency_id=agency_id)
    return _state_counts(queryset, list(TaskState.values))


def action_plan_state_counts(*, agency_id: Any = None) -> dict[str, int]:
    queryset = (
        ActionPlan.objects.all() if agency_id is None else ActionPlan.objects.filter(agency_id=agency_id)
    )
    return _state_counts(queryset, list(ActionPlanState.values))


@dataclass(frozen=True)
class OutboxBacklog:
    pending: int  # not yet dispatched: waiting, retrying or claimed right now
    processing: int  # of which claimed by a dispatcher at this moment
    dead: int
    oldest_pending_at: datetime | None
    oldest_pending_age_seconds: float

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["oldest_pending_at"] = self.oldest_pending_at.isoformat() if self.oldest_pending_at else None
        return data


def _outbox_scope(queryset: QuerySet, agency_id: Any) -> QuerySet:
    # Events carry their aggregate's agency in the payload (tasks, plans; SLA events copy it too).
    return queryset if agency_id is None else queryset.filter(payload__agency_id=str(agency_id))


def outbox_backlog(*, agency_id: Any = None, now: datetime | None = None) -> OutboxBacklog:
    """Undispatched and dead events (the filters match the partial indexes on the outbox)."""
    now = now or timezone.now()
    undone = _outbox_scope(OutboxEvent.objects.filter(status__in=UNDONE), agency_id).aggregate(
        pending=Count("pk"),
        processing=Count("pk", filter=Q(status=OutboxEvent.Status.PROCESSING)),
        oldest=Min("occurred_at"),
    )
    dead = _outbox_scope(OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD), agency_id).count()
    oldest = undone["oldest"]
    return OutboxBacklog(
        pending=undone["pending"],
        processing=undone["processing"],
        dead=dead,
        oldest_pending_at=oldest,
        oldest_pending_age_seconds=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
    )


def sla_counts(*, agency_id: Any = None, now: datetime | None = None) -> dict[str, int]:
    """Running, paused, at-risk and breached SLA records.

    At risk is the task list's ``?sla_status=at_risk`` rule (``sla.selectors.sla_at_risk_q``).
    """
    now = now or timezone.now()
    queryset = SLARecord.objects.all()
    if agency_id is not None:
        queryset = queryset.filter(task__agency_id=agency_id)
    return queryset.order_by().aggregate(
        running=Count("pk", filter=Q(status=SLARecordStatus.RUNNING)),
        paused=Count("pk", filter=Q(status=SLARecordStatus.PAUSED)),
        at_risk=Count("pk", filter=sla_at_risk_q(now=now)),
        breached=Count("pk", filter=Q(status=SLARecordStatus.BREACHED)),
    )


# Deliveries that will not arrive without someone acting: non-retryable failure, SSRF refusal, retries spent.
WEBHOOK_FAILED_STATUSES = ("failed", "refused", "dead")


def automation_counts(*, agency_id: Any = None, now: datetime | None = None) -> dict[str, int]:
    """Trigger executions and failed webhook deliveries in the last 24 h.

    Agency scope follows the event each record belongs to (events carry their agency in the payload).
    """
    since = (now or timezone.now()) - RECENT_WINDOW
    executions = TriggerExecution.objects.filter(created_at__gte=since)
    failures = WebhookDelivery.objects.filter(created_at__gte=since, status__in=WEBHOOK_FAILED_STATUSES)
    if agency_id is not None:
        executions = executions.filter(event__payload__agency_id=str(agency_id))
        failures = failures.filter(event__payload__agency_id=str(agency_id))
    return {
        "trigger_executions_24h": executions.order_by().count(),
        "webhook_failures_24h": failures.order_by().count(),
    }


def recent_alerts(*, limit: int = 8) -> list[dict[str, Any]]:
    """The latest alerts, newest first, for the dashboard."""
    items = list(Alert.objects.select_related("agency").order_by("-created_at", "-pk")[:limit])
    return [
        {
            "id": item.pk,
            "severity": item.severity,
            "message": item.message,
            "agency": str(item.agency) if item.agency_id else "",
            "created_at": item.created_at,
            "acknowledged": item.acknowledged_at is not None,
        }
        for item in items
    ]


def stats_scope(*, user: User) -> Any:
    """The agency whose figures ``user`` may see (``None``: everything); clients see none."""
    return agency_scope(user, "Workflow statistics are for administrators and agency staff.")


def workflow_stats(*, user: User, now: datetime | None = None) -> dict[str, Any]:
    """The figures behind ``GET /api/workflow/stats``: global for admins, one agency for its agents."""
    agency_id = stats_scope(user=user)
    now = now or timezone.now()
    backlog = outbox_backlog(agency_id=agency_id, now=now)
    return {
        "scope": "global" if agency_id is None else "agency",
        "agency_id": str(agency_id) if agency_id is not None else None,
        "generated_at": now,
        "tasks": task_state_counts(agency_id=agency_id),
        "action_plans": action_plan_state_counts(agency_id=agency_id),
        "sla": sla_counts(agency_id=agency_id, now=now),
        "outbox": {
            "pending": backlog.pending,
            "processing": backlog.processing,
            "dead": backlog.dead,
            "oldest_pending_at": backlog.oldest_pending_at,
            "oldest_pending_age_seconds": backlog.oldest_pending_age_seconds,
        },
        "automation": automation_counts(agency_id=agency_id, now=now),
    }


def metrics_snapshot(*, now: datetime | None = None) -> dict[str, Any]:
    """What the scrape-time collector exports (global scope)."""
    now = now or timezone.now()
    return {
        "tasks": task_state_counts(),
        "action_plans": action_plan_state_counts(),
        "outbox": outbox_backlog(now=now),
        "sla": sla_counts(now=now),
    }
