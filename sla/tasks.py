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


@shared_task(
    name="sla.sla_repair_apply",
    bind=True,
    ignore_result=True,
    max_retries=5,
    soft_time_limit=3600,
    time_limit=3660,
)
def sla_repair_apply_task(self, repair_id: str) -> None:
    """Apply a repair (``sla.repair_apply.sla_repair_run``). Each batch commits with its cursor, so a retry
    resumes where the last one ended; after the retries the repair is marked ``failed``."""
    from .repair_apply import sla_repair_fail, sla_repair_run

    try:
        sla_repair_run(repair_id=repair_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            sla_repair_fail(repair_id=repair_id, error=f"{type(exc).__name__}: {exc}")
            raise
        raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
