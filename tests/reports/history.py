"""Synthetic event histories for the reports tests: outbox rows written as the workflow and SLA apps write
them (the fields the rollups read), and a read of the stored rollups to compare with a recomputation."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from outbox.models import OutboxEvent
from reports.fold import Key, Metric
from reports.models import Rollup
from reports.rollups import epoch_ms


def task_event(
    *,
    task_id: uuid.UUID,
    event_type: str,
    sequence: int,
    at: datetime,
    agency_id: Any,
    service_area: str = "housing",
    task_type: str = "intake",
    old_state: str | None = None,
    new_state: str | None = None,
    status: str = OutboxEvent.Status.PENDING,
) -> OutboxEvent:
    payload: dict[str, Any] = {
        "task_id": str(task_id),
        "agency_id": str(agency_id),
        "service_area": service_area,
        "task_type": task_type,
    }
    if new_state is not None:
        payload.update(old_state=old_state, new_state=new_state)
    return OutboxEvent(
        event_type=event_type,
        aggregate_type="task",
        aggregate_id=task_id,
        sequence=sequence,
        occurred_at=at,
        next_attempt_at=at,
        correlation_id="reports-test",
        payload=payload,
        status=status,
    )


def sla_event(
    *,
    event_type: str,
    task_id: uuid.UUID,
    at: datetime,
    agency_id: Any,
    record_id: uuid.UUID | None = None,
    sequence: int = 1,
    breached: bool | None = None,
    service_area: str = "housing",
    task_type: str = "intake",
    named: bool = True,
) -> OutboxEvent:
    """An SLA record's outcome event (``SLABreached``, ``SLAMet``, ``SLARecalculated`` with ``breached``);
    ``named=False``: an older payload without ``sla_record_id``."""
    record_id = record_id or uuid.uuid4()
    payload: dict[str, Any] = {
        "task_id": str(task_id),
        "agency_id": str(agency_id),
        "service_area": service_area,
        "task_type": task_type,
    }
    if named:
        payload["sla_record_id"] = str(record_id)
    if event_type == "SLABreached":
        payload["breached_at"] = at.isoformat()
    if event_type == "SLAMet":
        payload["met_at"] = at.isoformat()
    if breached is not None:
        payload["breached"] = breached
    return OutboxEvent(
        event_type=event_type,
        aggregate_type="sla_record",
        aggregate_id=record_id,
        sequence=sequence,
        occurred_at=at,
        next_attempt_at=at,
        correlation_id="reports-test",
        payload=payload,
    )


def breach_event(*, task_id: uuid.UUID, at: datetime, agency_id: Any, **kwargs: Any) -> OutboxEvent:
    return sla_event(event_type="SLABreached", task_id=task_id, at=at, agency_id=agency_id, **kwargs)


def met_event(*, task_id: uuid.UUID, at: datetime, agency_id: Any, **kwargs: Any) -> OutboxEvent:
    return sla_event(event_type="SLAMet", task_id=task_id, at=at, agency_id=agency_id, **kwargs)


def recalculated_event(
    *, task_id: uuid.UUID, at: datetime, agency_id: Any, breached: bool, **kwargs: Any
) -> OutboxEvent:
    return sla_event(
        event_type="SLARecalculated", task_id=task_id, at=at, agency_id=agency_id, breached=breached, **kwargs
    )


def stored_rollups() -> Counter[Key]:
    """The rollup rows as the recomputation keys them (zero rows left out); the ``backlog_day`` rows are
    checked to be the daily sums of the ``backlog`` rows, then left out too (the recomputation has none)."""
    out: Counter[Key] = Counter()
    days: Counter = Counter()
    for row in Rollup.objects.filter(metric=Metric.BACKLOG):
        days[(row.bucket.date(), row.agency_id, row.service_area, row.task_type, row.state)] += row.value
    stored_days = Counter(
        {
            (row.bucket.date(), row.agency_id, row.service_area, row.task_type, row.state): row.value
            for row in Rollup.objects.filter(metric=Metric.BACKLOG_DAY).exclude(value=0)
        }
    )
    daily_sums = {key: value for key, value in days.items() if value}
    assert daily_sums == dict(stored_days), "the backlog_day rows are not the daily sums of the backlog rows"
    for row in Rollup.objects.exclude(value=0).exclude(metric=Metric.BACKLOG_DAY):
        key = (
            row.metric,
            epoch_ms(row.bucket),
            str(row.agency_id) if row.agency_id else None,
            row.service_area,
            row.task_type,
            row.state,
        )
        out[key] += row.value
    return out
