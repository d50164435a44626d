"""What the SLA app keeps from the history's retention: the events of a task whose SLA record is still
open (running or paused), and the record's own events — the clock they describe is still running."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from .models import SLARecord, SLARecordStatus

OPEN = (SLARecordStatus.RUNNING, SLARecordStatus.PAUSED)


def open_sla_events() -> Q:
    """``Q`` over ``OutboxEvent``: the events an open SLA record still needs.

    One index probe per event (``EXISTS`` on the record's task, or on its id), whatever the number of open
    records. Written as ``aggregate_id IN (every open record's task)`` it was one list of all of them, which
    PostgreSQL hashes while it fits ``work_mem`` and beyond that rescans for every event of a batch: the
    privacy bench's trim slowed to 4.7 s a batch once its writers had opened ~60,000 SLA clocks.
    """
    open_records = SLARecord.objects.filter(status__in=OPEN)
    task_open = Exists(open_records.filter(task_id=OuterRef("aggregate_id")))
    record_open = Exists(open_records.filter(pk=OuterRef("aggregate_id")))
    return Q(Q(aggregate_type="task"), task_open) | Q(Q(aggregate_type=SLARecord.aggregate_type), record_open)
