"""The Celery application: configured from Django settings (``CELERY_*``); beat runs what each app declares.

Run as ops do: ``celery -A polaris worker`` (any number) and ``celery -A polaris beat`` (exactly one).
"""

import os
from importlib import import_module

from celery import Celery
from django.core.exceptions import ImproperlyConfigured

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
    """Beat's schedule: every installed app's entries, each declared by its app's ``beat_schedule()`` in
    ``<app>/beat.py``.

    Gathered by name, as Celery gathers ``tasks.py``, so this module imports no app. A ``beat.py`` reads
    settings only: ``celery beat`` reads its configuration before Django has loaded the apps' models.
    Each entry expires before the next one is due: a backlog of stale ticks (worker down, queue congested)
    collapses into the next fresh one instead of running back to back. Overlapping runs are harmless
    anyway (SKIP LOCKED claims, compare-and-swap SLA updates).
    """
    from django.conf import settings

    schedule: dict = {}
    for app_name in settings.INSTALLED_APPS:
        try:
            module = import_module(f"{app_name}.beat")
        except ModuleNotFoundError as error:
            # No beat.py, or an AppConfig's dotted path (a class, not a package): nothing to gather.
            if error.name not in (f"{app_name}.beat", app_name):
                raise
            continue
        declare = getattr(module, "beat_schedule", None)
        if declare is None:
            continue
        entries = declare()
        if clash := schedule.keys() & entries.keys():
            raise ImproperlyConfigured(f"beat entries declared twice: {sorted(clash)}")
        schedule.update(entries)
    return schedule


@app.on_after_configure.connect
def _install_beat_schedule(sender: Celery, **kwargs: object) -> None:
    sender.conf.beat_schedule = _beat_schedule()
