"""The outbox's periodic tasks, gathered into beat's schedule by polaris.celery (settings only)."""

from django.conf import settings


def beat_schedule() -> dict[str, dict]:
    dispatch_every = float(settings.OUTBOX_DISPATCH_INTERVAL_SECONDS)
    return {
        # The safety net under the on-commit kick: due retries, events whose kick was lost.
        "outbox-dispatch": {
            "task": "outbox.dispatch",
            "schedule": dispatch_every,
            "options": {"expires": dispatch_every * 0.8},
        },
        # Retention: the dispatch ledger (and the history if OUTBOX_EVENT_RETENTION_DAYS is set).
        "outbox-retention-trim": {
            "task": "outbox.retention_trim",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
        # Retention the apps registered (polaris.retention): automation's logs, the audit log, …
        "retention-registered": {
            "task": "outbox.retention_registered",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
    }
