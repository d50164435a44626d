"""What the SLA app keeps from the history's retention: the events of a task whose SLA record is still
open (running or paused), and the record's own events — the clock they describe is still running."""

from __future__ import annotations

from django.db.models import Q

from .models import SLARecord, SLARecordStatus

OPEN = (SLARecordStatus.RUNNING, SLARecordStatus.PAUSED)


def open_sla_events() -> Q:
    """``Q`` over ``OutboxEvent``: the events an open SLA record still needs."""
    records = SLARecord.objects.filter(status__in=OPEN)
    return Q(aggregate_type="task", aggregate_id__in=records.values("task_id")) | Q(
        aggregate_type=SLARecord.aggregate_type, aggregate_id__in=records.values("pk")
    )
