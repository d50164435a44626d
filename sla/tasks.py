"""Celery interface to the SLA scan. Beat sends ``sla.sla_scan`` by name every SLA_SCAN_INTERVAL_SECONDS."""

from celery import shared_task
from django.conf import settings

from .scan import sla_scan


# Overlapping runs are harmless (claims are compare-and-swap / SKIP LOCKED); the limits keep a stuck scan
# from outliving the next one by much.
@shared_task(
    name="sla.sla_scan",
    ignore_result=True,
    soft_time_limit=max(settings.SLA_SCAN_INTERVAL_SECONDS - 30, 30),
    time_limit=max(settings.SLA_SCAN_INTERVAL_SECONDS - 10, 45),
)
def sla_scan_task() -> dict[str, int]:
    result = sla_scan()
    return {"breached": result.breached, "warned": result.warned}
