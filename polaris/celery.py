"""The Celery application: configured from Django settings (``CELERY_*``), with the beat schedule in code.

Run as ops do: ``celery -A polaris worker`` (any number) and ``celery -A polaris beat`` (exactly one).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

app = Celery("polaris")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Dispatch tasks are short nudges ("drain now"): prefetching several onto one busy process would only
# delay them while other processes idle, so each process reserves one message at a time.
app.conf.worker_prefetch_multiplier = 1
# A lost message costs at most one beat interval (the work is in the database), so ack on receipt;
# see outbox/tasks.py. Set explicitly so a global CELERY_TASK_ACKS_LATE does not change it.
app.conf.task_acks_late = False
# Celery's Django fixup closes the database connection before and after every task unless this is set,
# so each dispatch kick would pay a fresh PostgreSQL connection. Reuse it (Django's CONN_MAX_AGE and our
# own close_old_connections() in the tasks still retire broken or old connections); recycle every 1,000
# tasks as a backstop.
app.conf.CELERY_DB_REUSE_MAX = 1000


def _beat_schedule() -> dict:
    from django.conf import settings

    dispatch_every = float(settings.OUTBOX_DISPATCH_INTERVAL_SECONDS)
    sla_every = float(settings.SLA_SCAN_INTERVAL_SECONDS)
    timers_every = float(settings.TIMER_SWEEP_INTERVAL_SECONDS)
    webhook_sweep_every = float(settings.WEBHOOK_SWEEP_INTERVAL_SECONDS)
    # Each entry expires before the next one is due: a backlog of stale ticks (worker down, queue
    # congested) collapses into the next fresh one instead of running back to back. Overlapping runs
    # are harmless anyway (SKIP LOCKED claims, compare-and-swap SLA updates).
    return {
        "outbox-dispatch": {
            "task": "outbox.dispatch",
            "schedule": dispatch_every,
            "options": {"expires": dispatch_every * 0.8},
        },
        # Sent by name: the sla app defines the task; workflow and this module never import sla.
        "sla-scan": {
            "task": "sla.sla_scan",
            "schedule": sla_every,
            "options": {"expires": sla_every * 0.8},
        },
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
        # Retention: the dispatch ledger (and the history if OUTBOX_EVENT_RETENTION_DAYS is set), and
        # webhook attempts past WEBHOOK_ATTEMPT_RETENTION_DAYS.
        "outbox-retention-trim": {
            "task": "outbox.retention_trim",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
        "webhook-attempts-trim": {
            "task": "automation.webhook_attempts_trim",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
        # Idempotency-Key responses are kept IDEMPOTENCY_KEY_TTL_HOURS; drop older ones hourly.
        "idempotency-keys-purge": {
            "task": "ops.idempotency_keys_purge",
            "schedule": 3600.0,
            "options": {"expires": 3000.0},
        },
    }


@app.on_after_configure.connect
def _install_beat_schedule(sender: Celery, **kwargs: object) -> None:
    sender.conf.beat_schedule = _beat_schedule()
