"""Chaos (4): the worker's database connections are killed (pg_terminate_backend) mid-drain and when
idle; the same worker process recovers, and every effect still happens exactly once."""

import pytest
from django.db import connection

from outbox.tasks import outbox_dispatch_task
from polaris.celery import app as celery_app
from tests.outbox.conftest import probe_events_bulk
from tests.outbox.workers import outbox_status_counts, worker
from tests.support import effect_probe as effects
from tests.support.processes import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

WORKER_ENV = {
    "OUTBOX_LEASE_SECONDS": "2",
    "OUTBOX_DISPATCH_BATCH_SIZE": "50",
    "POLARIS_TEST_HANDLER_DELAY_SECONDS": "0.001",
}


def other_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


def terminate_other_backends() -> int:
    """Kill every other connection to the test database (only the worker's: the database is ours)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        return cursor.fetchone()[0]


def drain(expected: int) -> None:
    def drained() -> bool:
        outbox_dispatch_task.delay()
        return outbox_status_counts().get("dispatched", 0) == expected

    wait_until(drained, timeout=60, interval=0.5)


def test_the_worker_survives_its_database_connection_dropping(effect_table):
    probe_events_bulk(count=2000)
    celery_app.control.purge()
    with worker("dbdrop", **WORKER_ENV) as process:
        outbox_dispatch_task.delay()
        wait_until(lambda: effects.effect_counts()[0] >= 300, timeout=60)
        assert terminate_other_backends() >= 1  # mid-drain
        drain(2000)

        # Idle: the worker keeps its connection between tasks (CONN_MAX_AGE); kill it there, so the next
        # task meets a dead connection.
        outbox_dispatch_task.delay()
        wait_until(other_backends, timeout=10)
        assert terminate_other_backends() >= 1
        probe_events_bulk(count=100)
        drain(2100)

        assert process.popen.poll() is None, "the worker had to be restarted"

    assert effects.effect_counts() == (2100, 2100, 0)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(DISTINCT pid) FROM {effects.EFFECT_TABLE}")  # noqa: S608
        assert cursor.fetchone()[0] == 1  # one worker process did it all
