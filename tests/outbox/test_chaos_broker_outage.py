"""Chaos (2): stop Redis under a stream of transitions: none fails, and the backlog drains once it is back."""

import time

import pytest

from outbox.kick import kick_reset
from outbox.models import OutboxEvent
from polaris.celery import app as celery_app
from tests.outbox.workers import PrivateRedis, beat, publishing_to, worker
from tests.support import effect_probe as effects
from tests.support.processes import wait_until
from workflow.services.tasks import task_transition

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

# Each task walks new → in_progress → blocked → in_progress → completed: 4 transitions.
PATH = [("in_progress", ""), ("blocked", "Waiting on documents"), ("in_progress", ""), ("completed", "")]


def test_transitions_keep_working_while_the_broker_is_down(
    effect_table, make_task, agent, settings, tmp_path
):
    settings.OUTBOX_KICK_ON_COMMIT = True
    redis = PrivateRedis(tmp_path)
    redis.start()
    kick_reset()
    try:
        with (
            publishing_to(redis.url),
            worker("outage", CELERY_BROKER_URL=redis.url) as process,
            beat(tmp_path, interval=1, CELERY_BROKER_URL=redis.url),
        ):
            celery_app.control.purge()
            tasks = [make_task(title=f"Outage {n}") for n in range(15)]
            steps = [(task, target, reason) for target, reason in PATH for task in tasks]
            failures = []
            for index, (task, target, reason) in enumerate(steps):
                if index == len(steps) // 3:
                    redis.stop()
                if index == 2 * len(steps) // 3:
                    redis.start()
                try:
                    task_transition(task_id=task.pk, target_state=target, actor=agent, reason=reason)
                except Exception as exc:  # the point of the test: nothing may fail
                    failures.append(repr(exc))
                time.sleep(0.05)  # a steady stream, not a burst
            assert failures == []

            expected = set(
                OutboxEvent.objects.filter(aggregate_id__in=[t.pk for t in tasks]).values_list(
                    "id", flat=True
                )
            )
            assert len(expected) == len(tasks) * (1 + len(PATH))

            def drained() -> bool:
                handled = effects.handled_event_ids()
                return expected <= handled

            # After the broker is back the worker reconnects; beat (and kicks, once the kick's circuit
            # breaker closes again) drain the backlog, including events whose kicks were lost.
            try:
                wait_until(drained, timeout=60, interval=0.2)
            except AssertionError:
                raise AssertionError(f"backlog not drained; worker log:\n{process.log()}") from None
    finally:
        redis.stop()
    _, _, duplicated = effects.effect_counts()
    assert duplicated == 0
    assert effects.order_violations() == 0
