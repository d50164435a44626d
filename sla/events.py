"""What the SLA app writes to the outbox (aggregate ``sla_record``): the event types and their payloads.

Every SLA event payload is defined here, once, in Python: a breach found at a transition (``sla.clock``)
and the scan's breaches (``sla.scan``, which claims a batch in one statement, builds these payloads in
Python and writes all the batch's events in one more) both call ``sla_breach_payload``. A task completed
on time gets one ``SLAMet`` (``sla.clock``), so every completion under an SLA has an outcome event: the
trends (``reports``) count in attainment only the tasks that had one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflow.events import task_facts
from workflow.models import Task

from .models import SLARecord


class SLAEventType:
    SLA_WARNING = "SLAWarning"
    SLA_BREACHED = "SLABreached"
    SLA_RECALCULATED = "SLARecalculated"
    SLA_MET = "SLAMet"


SLA_EVENT_TYPES = (
    SLAEventType.SLA_WARNING,
    SLAEventType.SLA_BREACHED,
    SLAEventType.SLA_RECALCULATED,
    SLAEventType.SLA_MET,
)


def sla_event_payload(*, record: SLARecord, task: Task, config_name: str) -> dict[str, Any]:
    """What every SLA event says: the task's facts, its state, and the record's clock."""
    return {
        **task_facts(task),
        "task_state": task.state,
        "sla_record_id": str(record.pk),
        "config_name": config_name,
        "target_minutes": record.target_minutes,
        "started_at": record.started_at.isoformat(),
        "due_at": record.due_at.isoformat(),
        "paused_seconds": record.paused_seconds,
    }


def sla_breach_payload(
    *, record: SLARecord, task: Task, config_name: str, detected_by: str
) -> dict[str, Any]:
    """The ``SLABreached`` payload; ``detected_by`` is ``scan``, ``pause`` or ``completion``."""
    assert record.breached_at is not None, "a breach payload is built for a breached record"
    return {
        **sla_event_payload(record=record, task=task, config_name=config_name),
        "breached_at": record.breached_at.isoformat(),
        "detected_by": detected_by,
    }


def sla_met_payload(*, record: SLARecord, task: Task, config_name: str) -> dict[str, Any]:
    """The ``SLAMet`` payload: the task was completed on time (``met_at``, the completion)."""
    assert record.stopped_at is not None, "a met payload is built for a stopped record"
    return {
        **sla_event_payload(record=record, task=task, config_name=config_name),
        "met_at": record.stopped_at.isoformat(),
    }


def sla_warning_payload(
    *, record: SLARecord, task: Task, config_name: str, percentage: int, warning_at: datetime
) -> dict[str, Any]:
    """The ``SLAWarning`` payload for one percentage reached at ``warning_at``."""
    return {
        **sla_event_payload(record=record, task=task, config_name=config_name),
        "percentage": percentage,
        "warning_at": warning_at.isoformat(),
    }


def sla_recalculated_payload(
    *,
    record: SLARecord,
    task: Task,
    config_name: str,
    repair_id: Any,
    previous_due_at: datetime,
    previous_target_minutes: int,
    breached_before: bool,
    breached: bool,
) -> dict[str, Any]:
    """The ``SLARecalculated`` payload: a repair gave the record a new measurement (``measurement``, its
    number; the one it replaced is ``measurement - 1``). The record fields (``target_minutes``, ``due_at``,
    …) are the new measurement's; ``previous_*`` the replaced one's; ``breached_before``/``breached`` the
    outcome each judges (at the repair's ``as_of``)."""
    return {
        **sla_event_payload(record=record, task=task, config_name=config_name),
        "status": record.status,
        "breached_at": None if record.breached_at is None else record.breached_at.isoformat(),
        "repair_id": str(repair_id),
        "measurement": record.measurement,
        "previous_due_at": previous_due_at.isoformat(),
        "previous_target_minutes": previous_target_minutes,
        "breached_before": breached_before,
        "breached": breached,
    }


# What a client may read of an SLA event (``outbox.projection``): which task, when it is due, what
# happened (the event type) and when; never the config, its target or the clock's internals.
_CLIENT_KEYS = ("task_id", "task_state", "due_at", "breached_at", "warning_at", "met_at")


def sla_event_for_client(payload: dict[str, Any]) -> dict[str, Any]:
    """An SLA event's payload as a client may read it."""
    return {key: payload[key] for key in _CLIENT_KEYS if key in payload}
