"""Timers with real worker and beat processes: on time, after a SIGKILL, and across a broker outage.

One test takes the whole path: a matching event commits, the worker dispatches it, the engine sets the
timer and arms it on commit, and it fires. The others write timers directly (due a few seconds ahead, as a
timed trigger's match would write them with a shorter wait) and arm them the way ``automation.timers``
arms them after a change; the worker fires them, dispatches the ``TimerFired`` events and the engine runs
the trigger's action (an alert).
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

import pytest
import redis as redis_client
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from automation.models import Alert, TriggerExecution, TriggerTimer
from automation.services import trigger_create
from automation.timers import timers_arm
from ops.beat_guard import LOCK_NAME
from outbox.models import OutboxEvent
from polaris.celery import app as celery_app
from tests.outbox.workers import PrivateRedis, kill_hard, publishing_to
from tests.support.processes import CeleryProcess, celery_process, process_env, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

ENV = {"OUTBOX_LEASE_SECONDS": "3", "TIMER_CLAIM_TIMEOUT_SECONDS": "3"}
SET_BACK = timedelta(seconds=58)


def _worker_args(name: str) -> list[str]:
    return ["-P", "solo", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]


@contextlib.contextmanager
def _beat(tmp_path, *, sweep: float, **env: str):
    args = ["-s", str(tmp_path / "celerybeat-schedule")]
    env = {"TIMER_SWEEP_INTERVAL_SECONDS": str(sweep), "OUTBOX_DISPATCH_INTERVAL_SECONDS": "1", **ENV, **env}
    with celery_process("beat", *args, env=process_env(**env)) as process:
        yield process


@pytest.fixture
def alert_trigger(db):
    # Never matches an event by itself (nothing in these tests changes state): only the timers act.
    return trigger_create(
        name="timer alert",
        event_type="TaskStateChanged",
        actions=[{"type": "emit_alert", "params": {"message": "timer $timer_id"}}],
        wait_minutes=1,
    )


def _timers(trigger, tasks, *, due_in: float) -> list[TriggerTimer]:
    due_at = timezone.now() + timedelta(seconds=due_in)
    rows = []
    for task in tasks:
        created = OutboxEvent.objects.get(aggregate_id=task.pk, sequence=1)
        rows.append(
            TriggerTimer(
                trigger=trigger,
                event=created,
                aggregate_type="task",
                aggregate_id=task.pk,
                task=task,
                due_at=due_at,
            )
        )
    timers = TriggerTimer.objects.bulk_create(rows)
    timers_arm(due_at=due_at, force=True)
    return timers


def _fired_exactly_once(timers: list[TriggerTimer]) -> None:
    ids = [t.pk for t in timers]
    per_timer = dict(
        OutboxEvent.objects.filter(event_type="TimerFired", aggregate_id__in=ids)
        .values_list("aggregate_id")
        .annotate(n=Count("id"))
        .values_list("aggregate_id", "n")
    )
    assert per_timer == dict.fromkeys(ids, 1)
    assert TriggerExecution.objects.filter(event__event_type="TimerFired", outcome="matched").count() == len(
        ids
    )
    assert Alert.objects.count() == len(ids)


@pytest.mark.integration
def test_a_two_second_timer_fires_within_the_bound(alert_trigger, make_task, settings, tmp_path):
    settings.OUTBOX_KICK_ON_COMMIT = True
    celery_app.control.purge()
    task = make_task()
    # Beat's sweep runs every 30 s here: firing on time is the armed worker's doing.
    with (
        celery_process("worker", *_worker_args("timers-on-time"), env=process_env(**ENV)),
        _beat(tmp_path, sweep=30),
    ):
        time.sleep(1)  # let the worker's start-up arm (nothing due yet) pass
        (timer,) = _timers(alert_trigger, [task], due_in=2)
        wait_until(lambda: Alert.objects.exists(), timeout=10)
    timer.refresh_from_db()
    assert timer.state == "fired"
    lateness = (timer.fired_at - timer.due_at).total_seconds()
    assert 0 <= lateness < 1.0, lateness
    _fired_exactly_once([timer])


@pytest.mark.integration
def test_a_timer_set_by_a_dispatched_event_fires_within_the_bound(make_task, settings, tmp_path):
    settings.OUTBOX_KICK_ON_COMMIT = True
    celery_app.control.purge()
    trigger = trigger_create(
        name="intake still new",
        event_type="TaskCreated",
        predicate='task_type == "intake"',
        actions=[{"type": "emit_alert", "params": {"message": "timer $timer_id"}}],
        wait_minutes=1,
    )
    with (
        celery_process("worker", *_worker_args("timers-whole-path"), env=process_env(**ENV)),
        _beat(tmp_path, sweep=30),  # the sweep is no help within this test: the armed worker fires it
    ):
        time.sleep(1)  # let the worker's start-up arm (nothing due yet) pass
        with transaction.atomic():
            task = make_task()
            # A wait is whole minutes: the event is dated 58 s back, so its timer falls due 2 s after it
            # commits. Nothing else is done by hand: the commit kicks the worker, which dispatches it.
            OutboxEvent.objects.filter(aggregate_id=task.pk).update(occurred_at=F("occurred_at") - SET_BACK)
        wait_until(lambda: Alert.objects.exists(), timeout=10)
    timer = TriggerTimer.objects.get(trigger=trigger)
    assert (timer.task_id, timer.event.event_type, timer.state) == (task.pk, "TaskCreated", "fired")
    assert TriggerExecution.objects.filter(trigger=trigger, event=timer.event, outcome="scheduled").exists()
    assert timer.created_at < timer.due_at  # set by the dispatch before it fell due, not after
    lateness = (timer.fired_at - timer.due_at).total_seconds()
    assert 0 <= lateness < 1.0, lateness
    _fired_exactly_once([timer])


@pytest.mark.chaos
def test_worker_sigkilled_while_timers_are_due_each_fires_exactly_once(alert_trigger, make_task, settings):
    settings.OUTBOX_KICK_ON_COMMIT = True
    celery_app.control.purge()
    tasks = [make_task(title=f"Kill {n}") for n in range(40)]
    victim = CeleryProcess("worker", _worker_args("timers-victim"), process_env(**ENV))
    victim.wait_for("ready.")
    try:
        timers = _timers(alert_trigger, tasks, due_in=1.5)
        wait_until(
            lambda: TriggerTimer.objects.filter(state="fired").exists() or Alert.objects.exists(),
            timeout=10,
            interval=0.005,
        )
        kill_hard(victim)  # mid-firing or mid-dispatch: whatever it had not committed rolls back
    finally:
        victim.stop()
    with celery_process("worker", *_worker_args("timers-survivor"), env=process_env(**ENV)):
        # The survivor fires what is still due at start (worker_ready); leased events come back after 3 s.
        from outbox.tasks import outbox_dispatch_task

        def done() -> bool:
            outbox_dispatch_task.delay()
            return Alert.objects.count() >= len(timers)

        wait_until(done, timeout=30, interval=0.5)
        time.sleep(1)  # a duplicate, if any, would land now
    assert not TriggerTimer.objects.filter(state="pending").exists()
    _fired_exactly_once(timers)


@pytest.mark.chaos
def test_broker_down_while_a_timer_falls_due_it_fires_once_the_broker_is_back(
    alert_trigger, make_task, settings, tmp_path
):
    settings.OUTBOX_KICK_ON_COMMIT = True
    redis = PrivateRedis(tmp_path)
    redis.start()
    task = make_task()
    env = {"CELERY_BROKER_URL": redis.url, "BEAT_LOCK_TTL_SECONDS": "3"}
    lock_holder = redis_client.Redis.from_url(redis.url)
    try:
        with (
            publishing_to(redis.url),
            celery_process("worker", *_worker_args("timers-outage"), env=process_env(**ENV, **env)) as worker,
            _beat(tmp_path, sweep=1, **env) as beat,
        ):
            time.sleep(1)
            redis.stop()
            (timer,) = _timers(alert_trigger, [task], due_in=1)  # the arm cannot be sent
            time.sleep(2.5)
            timer.refresh_from_db()
            assert timer.state == "pending"  # due, but nobody could be told
            redis.start()
            try:
                wait_until(lambda: Alert.objects.exists(), timeout=30, interval=0.2)
                # The restart wiped beat's guard lock: the same beat takes it again at its next renewal
                # (every third of the TTL, 1 s here) instead of stopping as if a rival had taken it.
                wait_until(lambda: lock_holder.get(LOCK_NAME), timeout=5, interval=0.2)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\nbeat:\n{beat.log()}\nworker:\n{worker.log()}") from None
            assert beat.popen.poll() is None, beat.log()
            assert lock_holder.get(LOCK_NAME).decode().endswith(f":{beat.popen.pid}")
    finally:
        redis.stop()
    _fired_exactly_once([timer])


def _claimable(probe) -> int:
    """Due pending timers another worker could claim right now (what ``timers_fire_due`` would see)."""
    return probe.execute(
        "SELECT count(*) FROM (SELECT id FROM automation_triggertimer WHERE state = 'pending'"
        " AND due_at <= now() FOR UPDATE SKIP LOCKED) s"
    ).fetchone()[0]


def _stalled_on_the_outbox(probe) -> bool:
    return (
        probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND position('outbox_outboxevent' in query) > 0"
        ).fetchone()[0]
        == 1
    )


@pytest.mark.chaos
def test_a_live_claim_keeps_its_timers_and_a_killed_claimer_frees_them_within_the_claim_timeout(
    alert_trigger, make_task
):
    """Short leases, for timers: the claim is the firing transaction's row locks, not a lease column. A live
    claimer (here stalled inside it: its TimerFired insert waits on a table lock we hold) keeps its timers
    however long it runs up to ``TIMER_CLAIM_TIMEOUT_SECONDS``; a SIGKILLed one loses them within that bound
    (the server aborts the transaction), and nothing it did inside survives, so the timer fires once."""
    import subprocess
    import sys

    import psycopg

    from automation.timers import timers_fire_due
    from tests.support.processes import ROOT, database_url_for_tests

    task = make_task()
    (timer,) = TriggerTimer.objects.bulk_create(
        [
            TriggerTimer(
                trigger=alert_trigger,
                event=OutboxEvent.objects.get(aggregate_id=task.pk, sequence=1),
                aggregate_type="task",
                aggregate_id=task.pk,
                task=task,
                due_at=timezone.now() - timedelta(seconds=1),
            )
        ]
    )
    url = database_url_for_tests()
    with psycopg.connect(url) as locker, psycopg.connect(url, autocommit=True) as probe:
        assert _claimable(probe) == 1
        locker.execute("LOCK TABLE outbox_outboxevent IN SHARE MODE")  # held until locker rolls back
        code = (
            "import django; django.setup(); from automation.timers import timers_fire_due;"
            " print(timers_fire_due(), flush=True)"
        )
        claimer = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=process_env(TIMER_CLAIM_TIMEOUT_SECONDS="3", DJANGO_SETTINGS_MODULE="polaris.settings"),
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            # Stalled mid-claim (not probed before: a probe's own row lock could make the claim skip it).
            wait_until(lambda: _stalled_on_the_outbox(probe), timeout=30, interval=0.05)
            assert _claimable(probe) == 0  # claimed
            held_since = time.monotonic()
            while time.monotonic() - held_since < 1.0:  # a slow firing keeps its claim
                assert _claimable(probe) == 0
                time.sleep(0.1)
            assert claimer.poll() is None
        finally:
            kill_hard(claimer)
        killed_at = time.monotonic()
        wait_until(lambda: _claimable(probe) == 1, timeout=10, interval=0.05)
        freed_after = time.monotonic() - killed_at
        locker.rollback()
    assert freed_after < 3 + 1.5, freed_after  # within the claim timeout (and some slack)
    assert not OutboxEvent.objects.filter(event_type="TimerFired").exists()  # the killed claim left nothing
    assert timers_fire_due() == 1
    timer.refresh_from_db()
    assert timer.state == "fired"
    assert OutboxEvent.objects.filter(event_type="TimerFired", aggregate_id=timer.pk).count() == 1
