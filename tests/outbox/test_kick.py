"""The after-commit kick: one per transaction, off in poll-only mode, never slow when the broker is down."""

import time
from unittest import mock

import pytest
from django.db import transaction

from outbox import kick
from tests.outbox.workers import free_port, publishing_to
from workflow.services.tasks import task_transition


def kicks(callbacks) -> int:
    return sum(1 for callback in callbacks if callback is kick._send_kick)


def test_one_kick_per_committing_transaction(make_task, agent, django_capture_on_commit_callbacks, settings):
    settings.OUTBOX_KICK_ON_COMMIT = True
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        task = make_task()  # three events in one transaction
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
        task_transition(task_id=task.pk, target_state="completed", actor=agent)
    assert kicks(callbacks) == 1


def test_poll_only_mode_sends_no_kick(make_task, django_capture_on_commit_callbacks, settings):
    settings.OUTBOX_KICK_ON_COMMIT = False
    with django_capture_on_commit_callbacks() as callbacks:
        make_task()
    assert kicks(callbacks) == 0


@pytest.fixture
def dead_broker():
    kick.kick_reset()
    with publishing_to(f"redis://127.0.0.1:{free_port()}/0"):  # nothing listens there
        yield
    kick.kick_reset()


def test_a_dead_broker_costs_one_short_attempt_then_kicks_pause(dead_broker, settings):
    settings.OUTBOX_DISPATCH_INTERVAL_SECONDS = 5
    started = time.monotonic()
    kick._send_kick()  # must not raise: the commit already happened
    assert time.monotonic() - started < 2

    with mock.patch.object(kick.celery_app, "send_task") as publish:
        kick._send_kick()
    publish.assert_not_called()  # circuit open: beat covers the next interval


def test_kicks_coalesce_until_a_dispatch_run_starts(settings):
    settings.OUTBOX_DISPATCH_INTERVAL_SECONDS = 5
    kick.kick_reset()
    kick.kick_acknowledge()
    with mock.patch.object(kick.celery_app, "send_task") as publish:
        kick._send_kick()
        kick._send_kick()  # a kick is already queued: this commit rides on it
        assert publish.call_count == 1
        kick.kick_acknowledge()  # a dispatch run started: later commits need their own kick
        kick._send_kick()
        assert publish.call_count == 2
    kick.kick_acknowledge()


@pytest.mark.django_db
def test_the_dispatch_task_clears_the_pending_flag_before_it_claims(settings):
    from outbox.tasks import outbox_dispatch_task

    kick.kick_reset()
    with mock.patch.object(kick.celery_app, "send_task") as publish:
        kick._send_kick()
        outbox_dispatch_task.run()
        kick._send_kick()
    assert publish.call_count == 2
    kick.kick_acknowledge()


@pytest.mark.django_db(transaction=True)  # each item really commits
def test_a_bulk_request_kicks_once_after_its_last_item(make_task, agent, settings):
    from workflow.services.bulk import task_bulk_apply

    settings.OUTBOX_KICK_ON_COMMIT = True
    tasks = [make_task() for _ in range(3)]
    with mock.patch.object(kick, "_send_kick") as send:
        results = task_bulk_apply(
            actor=agent,
            action="transition",
            task_ids=[task.pk for task in tasks],
            params={"target_state": "in_progress"},
        )
        assert [result["status"] for result in results] == ["succeeded"] * 3
    assert send.call_count == 1  # not one per item's commit


@pytest.mark.django_db(transaction=True)
def test_a_bulk_request_that_writes_nothing_kicks_nothing(make_task, agent, settings):
    from workflow.services.bulk import task_bulk_apply

    settings.OUTBOX_KICK_ON_COMMIT = True
    task = make_task()
    with mock.patch.object(kick, "_send_kick") as send:
        results = task_bulk_apply(
            actor=agent, action="transition", task_ids=[task.pk], params={"target_state": "completed"}
        )
    assert results[0]["status"] == "failed"
    assert send.call_count == 0
