"""A real Celery worker (and beat) drain the outbox: fast with the after-commit kick, by beat without it."""

import time

import pytest

from outbox.models import OutboxEvent
from polaris.celery import app as celery_app
from tests.outbox.workers import beat, worker
from tests.support import effect_probe as effects
from tests.support.processes import wait_until
from workflow.services.tasks import task_transition

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def effect_of(event_id):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {effects.EFFECT_TABLE} WHERE event_id = %s", [event_id])  # noqa: S608
        return cursor.fetchone()[0]


def test_with_the_kick_a_transition_is_handled_within_a_second(effect_table, make_task, agent, settings):
    settings.OUTBOX_KICK_ON_COMMIT = True
    celery_app.control.purge()
    with worker("kick"):
        warm_up = make_task()  # the worker's first task opens its database connection
        wait_until(lambda: effect_of(OutboxEvent.objects.get(aggregate_id=warm_up.pk).pk), timeout=10)

        task = make_task()
        _, event = task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
        committed = time.monotonic()
        wait_until(lambda: effect_of(event.pk), timeout=1.0, interval=0.005)
        latency = time.monotonic() - committed

    assert latency < 1.0
    assert effect_of(event.pk) == 1


def test_poll_only_a_transition_is_handled_within_one_beat_interval(
    effect_table, make_task, agent, settings, tmp_path
):
    settings.OUTBOX_KICK_ON_COMMIT = False
    interval = 1.5
    celery_app.control.purge()
    with worker("poll"), beat(tmp_path, interval=interval):
        warm_up = make_task()
        wait_until(lambda: effect_of(OutboxEvent.objects.get(aggregate_id=warm_up.pk).pk), timeout=15)

        task = make_task()
        committed = time.monotonic()
        event = OutboxEvent.objects.get(aggregate_id=task.pk)
        # Allow the handling itself (tens of milliseconds) on top of the interval.
        wait_until(lambda: effect_of(event.pk), timeout=interval + 0.5, interval=0.01)
        latency = time.monotonic() - committed

    assert latency < interval + 0.5
    event.refresh_from_db()
    assert event.status == OutboxEvent.Status.DISPATCHED
