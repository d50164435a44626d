"""The SLA app's eraser: the events of the client's SLA records carry the task's facts (its title)."""

from __future__ import annotations

from outbox.models import OutboxEvent
from polaris.erasure import rows_erase

from .models import SLARecord


def sla_events_erase(*, client_id: int, dry_run: bool) -> int:
    """Scrub the payloads of the events of the SLA records of the client's tasks."""
    records = SLARecord.objects.filter(task__client_id=client_id).values("pk")
    events = OutboxEvent.objects.filter(aggregate_type=SLARecord.aggregate_type, aggregate_id__in=records)
    return rows_erase(events, text_fields=("last_error",), json_fields=("payload",), dry_run=dry_run)
