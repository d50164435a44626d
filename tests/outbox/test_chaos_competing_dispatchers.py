"""Chaos (3): three workers and two overlapping dispatch loops over 10,000 events.

No effect twice, every aggregate's events handled in sequence order, and the work really was shared.
"""

import threading
import time

import pytest
from django.db import connection

from outbox.dispatcher import outbox_dispatch
from outbox.tasks import outbox_dispatch_task
from polaris.celery import app as celery_app
from tests.outbox.conftest import probe_events_bulk
from tests.outbox.workers import CeleryProcess, dispatch_env, outbox_status_counts
from tests.support import effect_probe as effects
from tests.support.processes import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

EVENTS = 10_000
AGGREGATES = 500  # 20 events each: ordering is really exercised


def dispatch_loop(stop: threading.Event, reports: list) -> None:
    """A dispatcher in this process (like an overlapping beat run), until told to stop."""
    try:
        while not stop.is_set():
            report = outbox_dispatch(budget_seconds=2, batch_size=200)
            reports.append(report.dispatched)
            if not report.claimed:
                time.sleep(0.02)
    finally:
        connection.close()


def test_competing_dispatchers_never_double_handle_and_keep_order(effect_handler):
    probe_events_bulk(count=EVENTS, aggregates=AGGREGATES)
    celery_app.control.purge()
    env = dispatch_env(OUTBOX_DISPATCH_BATCH_SIZE="200")
    # One task per idle worker: with the default prefetch one worker could take every kick and drain the
    # 10,000 events alone before the others were handed any (seen once in CI: 2 dispatcher processes).
    args = ["-P", "solo", "-c", "1", "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle"]
    workers = [CeleryProcess("worker", [*args, "-n", f"competitor{n}@%h"], env) for n in range(3)]
    stop = threading.Event()
    reports: list[int] = []
    loops = [threading.Thread(target=dispatch_loop, args=(stop, reports)) for _ in range(2)]
    try:
        for process in workers:
            process.wait_for("ready.")
        for loop in loops:
            loop.start()

        def drained() -> bool:
            for _ in workers:
                outbox_dispatch_task.delay()
            return outbox_status_counts().get("dispatched", 0) == EVENTS

        wait_until(drained, timeout=120, interval=0.3)
    finally:
        stop.set()
        for loop in loops:
            loop.join(timeout=30)
        for process in workers:
            process.stop()

    assert effects.effect_counts() == (EVENTS, EVENTS, 0)
    assert effects.order_violations() == 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(DISTINCT pid) FROM {effects.EFFECT_TABLE}")  # noqa: S608
        dispatcher_processes = cursor.fetchone()[0]
    assert dispatcher_processes >= 3, "the work was not shared between the dispatchers"
    assert sum(reports) > 0
