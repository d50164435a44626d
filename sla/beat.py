"""The SLA app's periodic task, gathered into beat's schedule by polaris.celery (settings only)."""

from django.conf import settings


def beat_schedule() -> dict[str, dict]:
    scan_every = float(settings.SLA_SCAN_INTERVAL_SECONDS)
    return {
        "sla-scan": {
            "task": "sla.sla_scan",
            "schedule": scan_every,
            "options": {"expires": scan_every * 0.8},
        },
    }
