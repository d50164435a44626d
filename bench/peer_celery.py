"""The peer's Celery app (django-celery-outbox's ``OutboxCelery``) and its one task per event.

``peer.effect`` is sent through the outbox: ``.delay()`` inside a transaction writes a row that the relay
(``manage.py celery_outbox_relay``) publishes after commit. ``peer.effect_direct`` is excluded from the
outbox (``CELERY_OUTBOX_EXCLUDE_TASKS``) and sent with ``transaction.on_commit(task.delay)``: not durable.
Both run the idempotent-consumer body the library's docs ask for (a unique ledger row, then the effect:
the same effect table ``tests.support.effect_probe`` writes for Polaris's dispatcher).
"""

import os

from django_celery_outbox import OutboxCelery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peer_settings")

QUEUE = "peer-bench"

app = OutboxCelery("peer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = QUEUE
app.conf.worker_prefetch_multiplier = 4  # Celery's default
app.conf.task_acks_late = True  # the durable way: a crash mid-task redelivers (hence the ledger)
# The same connection reuse Polaris's worker gets (polaris/celery.py), so neither pays a reconnect per task.
app.conf.CELERY_DB_REUSE_MAX = 1000


def _handle(event_id: str, aggregate_id: str, sequence: int) -> None:
    from django.db import IntegrityError, connection, transaction

    from bench.peerapp.models import PeerHandledMessage
    from tests.support.effect_probe import EFFECT_TABLE

    try:
        with transaction.atomic():
            PeerHandledMessage.objects.create(message_id=event_id)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {EFFECT_TABLE} (event_id, aggregate_id, sequence, pid) "
                    "VALUES (%s, %s, %s, %s)",
                    [event_id, aggregate_id, sequence, os.getpid()],
                )
    except IntegrityError:
        return  # a redelivery: the effect is already there


@app.task(name="peer.effect")
def peer_effect(event_id: str, aggregate_id: str, sequence: int) -> None:
    _handle(event_id, aggregate_id, sequence)


@app.task(name="peer.effect_direct")
def peer_effect_direct(event_id: str, aggregate_id: str, sequence: int) -> None:
    _handle(event_id, aggregate_id, sequence)
