"""The automation app's erasers: what automation kept about the client's events — webhook deliveries'
errors, attempts' response excerpts and errors, trigger executions' errors and results, alerts' messages."""

from __future__ import annotations

from django.db import models

from outbox.models import OutboxEvent
from polaris.erasure import eraser_register, rows_erase
from sla.models import SLARecord
from workflow.models import ActionPlan, Task

from .models import Alert, TriggerExecution, TriggerTimer, WebhookAttempt, WebhookDelivery
from .timers import TIMER_AGGREGATE


def client_events(client_id: int) -> models.QuerySet[OutboxEvent]:
    """Every event about the client's work: its tasks', plans', SLA records' and timers' events."""
    tasks = Task.objects.filter(client_id=client_id).values("pk")
    aggregates = {
        Task.aggregate_type: tasks,
        ActionPlan.aggregate_type: ActionPlan.objects.filter(client_id=client_id).values("pk"),
        SLARecord.aggregate_type: SLARecord.objects.filter(task__in=tasks).values("pk"),
        TIMER_AGGREGATE: TriggerTimer.objects.filter(task__in=tasks).values("pk"),
    }
    condition = models.Q(pk__in=[])
    for aggregate_type, ids in aggregates.items():
        condition |= models.Q(aggregate_type=aggregate_type, aggregate_id__in=ids)
    return OutboxEvent.objects.filter(condition)


def _erase(model, relation: str, *, text_fields=(), json_fields=()):
    def erase(*, client_id: int, dry_run: bool) -> int:
        rows = model.objects.filter(**{f"{relation}__in": client_events(client_id).values("pk")})
        return rows_erase(rows, text_fields=text_fields, json_fields=json_fields, dry_run=dry_run)

    return erase


def automation_erasers_register() -> None:
    """Called from ``AutomationConfig.ready()``."""
    eraser_register("webhook_deliveries", _erase(WebhookDelivery, "event", text_fields=("last_error",)))
    eraser_register(
        "webhook_attempts",
        _erase(WebhookAttempt, "delivery__event", text_fields=("response_excerpt", "error")),
    )
    eraser_register(
        "trigger_executions",
        _erase(TriggerExecution, "event", text_fields=("error",), json_fields=("action_results",)),
    )
    eraser_register("alerts", _erase(Alert, "event", text_fields=("message",)))
