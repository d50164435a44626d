"""A transition locks its own SLA record, not the shared config: tasks under one config never queue."""

import threading

import pytest
from django.db import connection, transaction

from sla.scan import sla_scan
from workflow.services.tasks import task_transition


@pytest.mark.django_db(transaction=True)
def test_transitions_of_tasks_sharing_a_config_do_not_block_each_other(make_task, make_config, agent):
    make_config(name="visits", task_type="home-visit", target_minutes=60)
    first = make_task(title="first", task_type="home-visit")
    second = make_task(title="second", task_type="home-visit")
    holding, release = threading.Event(), threading.Event()
    errors = []

    def hold_first_open():
        try:
            with transaction.atomic():
                task_transition(task_id=first.pk, target_state="blocked", actor=agent, reason="waiting")
                holding.set()
                release.wait(timeout=20)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=hold_first_open)
    thread.start()
    try:
        assert holding.wait(timeout=20)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '3s'")
            task_transition(task_id=second.pk, target_state="blocked", actor=agent, reason="waiting")
        # The scan skips the record the open transaction holds rather than waiting for it.
        assert sla_scan().breached == 0
    finally:
        release.set()
        thread.join(timeout=30)
    assert not errors, errors
