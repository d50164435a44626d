"""The automation app's periodic tasks, gathered into beat's schedule by polaris.celery (settings only)."""

from django.conf import settings


def beat_schedule() -> dict[str, dict]:
    timers_every = float(settings.TIMER_SWEEP_INTERVAL_SECONDS)
    webhook_sweep_every = float(settings.WEBHOOK_SWEEP_INTERVAL_SECONDS)
    return {
        # Fires due timers of timed triggers and arms the next one (workers arm them on time; this is
        # the safety net for lost eta messages and broker outages).
        "timers-sweep": {
            "task": "automation.timers_sweep",
            "schedule": timers_every,
            "options": {"expires": timers_every * 0.8},
        },
        # Re-enqueues webhook deliveries whose sender died (lease lapsed) or whose message was lost.
        "webhook-sweep": {
            "task": "automation.webhook_sweep",
            "schedule": webhook_sweep_every,
            "options": {"expires": webhook_sweep_every * 0.8},
        },
        # Retention: webhook attempts past WEBHOOK_ATTEMPT_RETENTION_DAYS.
        "webhook-attempts-trim": {
            "task": "automation.webhook_attempts_trim",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
    }
