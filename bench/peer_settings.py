"""Settings for the peer benchmarks only: the project's settings plus the peer apps.

The peers (django-fsm-log, django-celery-outbox, ``bench.peerapp``) are never installed in the project
itself; a benchmark child process runs with ``DJANGO_SETTINGS_MODULE=bench.peer_settings`` against a
scratch database. django-fsm-log listens to every model's ``post_transition``, so Polaris's own arm runs
in another process with the plain ``polaris.settings``.
"""

from polaris.settings import *  # noqa: F403
from polaris.settings import INSTALLED_APPS

INSTALLED_APPS = [
    *INSTALLED_APPS,
    "django_fsm_log",
    "django_celery_outbox",
    "bench.peerapp.apps.PeerAppConfig",
]

# django-celery-outbox: the Celery app whose send_task writes the outbox row (bench/peer_celery.py).
CELERY_OUTBOX_APP = "bench.peer_celery.app"
# The plain `transaction.on_commit(task.delay)` arm: this task bypasses the outbox (the library's own switch).
CELERY_OUTBOX_EXCLUDE_TASKS = ["peer.effect_direct"]
DJANGO_FSM_LOG_STORAGE_METHOD = "django_fsm_log.backends.SimpleBackend"
