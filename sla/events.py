"""What the SLA app writes to the outbox (aggregate ``sla_record``): the event types and their payloads.

Every SLA event payload is defined here. ``sla_breach_payload`` builds it in Python (a breach found at a
transition, ``sla.clock``); ``SLA_BREACH_PAYLOAD_SQL`` renders the same keys and formats in SQL for the scan,
which claims and writes a whole batch in one statement (``sla.scan``; building the payloads in Python there
made the bench's 10,000-breach scan about 12x slower). ``tests/sla/test_scan.py`` holds the two equal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflow.models import Task
from workflow.services.events import task_facts

from .models import SLARecord


class SLAEventType:
    SLA_WARNING = "SLAWarning"
    SLA_BREACHED = "SLABreached"


SLA_EVENT_TYPES = (SLAEventType.SLA_WARNING, SLAEventType.SLA_BREACHED)


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


def sla_warning_payload(
    *, record: SLARecord, task: Task, config_name: str, percentage: int, warning_at: datetime
) -> dict[str, Any]:
    """The ``SLAWarning`` payload for one percentage reached at ``warning_at``."""
    return {
        **sla_event_payload(record=record, task=task, config_name=config_name),
        "percentage": percentage,
        "warning_at": warning_at.isoformat(),
    }


def _iso_sql(column: str) -> str:
    """SQL rendering a UTC timestamp exactly as Python's ``datetime.isoformat()`` does (no ``.000000``)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    # ``%%``: the statement goes through the driver's parameter substitution.
    fraction = f"CASE WHEN extract(microseconds FROM {column})::bigint %% 1000000 <> 0"
    seconds = f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    return f"{seconds} || {fraction} THEN to_char({utc}, '.US') ELSE '' END || '+00:00'"


# The ``SLABreached`` payload over the scan statement's ``t`` (task), ``c`` (claimed record) and ``cfg``
# (config): the same keys and formats as ``sla_breach_payload(..., detected_by="scan")``.
SLA_BREACH_PAYLOAD_SQL = f"""jsonb_build_object(
    'task_id', t.id::text, 'title', t.title, 'task_type', t.task_type, 'service_area', t.service_area,
    'priority', t.priority, 'client_id', t.client_id, 'agency_id', t.agency_id::text,
    'assignee_id', t.assignee_id, 'action_plan_id', t.action_plan_id::text, 'task_state', t.state,
    'sla_record_id', c.id::text, 'config_name', cfg.name, 'target_minutes', c.target_minutes,
    'started_at', {_iso_sql("c.started_at")}, 'due_at', {_iso_sql("c.due_at")},
    'paused_seconds', c.paused_seconds, 'breached_at', {_iso_sql("c.due_at")}, 'detected_by', 'scan')"""
