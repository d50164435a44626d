"""Two predecessors completing at the same moment, their events handled in parallel on two connections:
the dependent becomes ready exactly once. And a real Celery worker does it after the commit's kick."""

import threading
import time

import pytest
from django.db import connection, transaction

from careplans import readiness
from careplans.models import TemplatedTask
from careplans.services.instantiation import plan_instantiate
from outbox.models import OutboxEvent
from polaris.celery import app as celery_app
from tests.careplans.conftest import DIAMOND
from tests.support.processes import celery_process, process_env, wait_until
from workflow.models import Task
from workflow.services.tasks import task_assign, task_transition

ROUNDS = 8
# Two roots and one task waiting for both.
FORK = [
    {"key": "left", "title": "Left", "task_type": "left"},
    {"key": "right", "title": "Right", "task_type": "right"},
    {"key": "join", "title": "Join", "task_type": "join", "depends_on": ["left", "right"]},
]


def make_plan(make_template, agent, client_user, agency, blueprints):
    plan = plan_instantiate(
        actor=agent, template_id=make_template(blueprints).pk, client=client_user, agency=agency
    )
    return {link.key: link.task_id for link in TemplatedTask.objects.filter(plan=plan)}


def complete(task_id, agent):
    task_assign(task_id=task_id, actor=agent, assignee=agent)
    task_transition(task_id=task_id, target_state="in_progress", actor=agent)
    return task_transition(task_id=task_id, target_state="completed", actor=agent)[1]


@pytest.mark.django_db(transaction=True)
def test_two_predecessors_handled_at_once_make_the_dependent_ready_once(
    make_template, agent, client_user, agency, monkeypatch
):
    lookup = readiness._dependents
    for _ in range(ROUNDS):
        tasks = make_plan(make_template, agent, client_user, agency, FORK)
        events = [complete(tasks["left"], agent), complete(tasks["right"], agent)]
        barrier = threading.Barrier(2, timeout=10)

        def dependents_then_wait(predecessor_ids, barrier=barrier):
            found = lookup(predecessor_ids)
            barrier.wait()  # both handlers have read their dependents; now both go for the lock
            return found

        monkeypatch.setattr(readiness, "_dependents", dependents_then_wait)
        errors: list[BaseException] = []

        def handle(event, errors=errors):
            try:
                with transaction.atomic():  # as the dispatcher runs a handler
                    readiness.task_readiness_handle(event)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=handle, args=(event,)) for event in events]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        join = Task.objects.get(pk=tasks["join"])
        assert join.waiting_on == []
        kinds = list(
            OutboxEvent.objects.filter(aggregate_id=join.pk)
            .order_by("sequence")
            .values_list("event_type", flat=True)
        )
        assert kinds == ["TaskCreated", "TaskDependencyMet", "TaskReady"]
        assert join.version == 3


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_makes_the_dependent_ready_after_the_kick(
    make_template, agent, client_user, agency, settings
):
    settings.OUTBOX_KICK_ON_COMMIT = True
    celery_app.control.purge()
    args = ("-P", "solo", "-c", "1", "-n", "careplans@%h", "--without-gossip", "--without-mingle")
    with celery_process("worker", *args, env=process_env()) as process:
        warm = make_plan(make_template, agent, client_user, agency, DIAMOND)
        complete(warm["intake"], agent)
        try:
            wait_until(lambda: not Task.objects.get(pk=warm["assessment"]).waiting_on, timeout=20)
        except AssertionError:
            raise AssertionError(process.output[-4000:]) from None

        tasks = make_plan(make_template, agent, client_user, agency, DIAMOND)
        complete(tasks["intake"], agent)
        committed = time.monotonic()
        wait_until(lambda: not Task.objects.get(pk=tasks["assessment"]).waiting_on, timeout=5, interval=0.005)
        latency = time.monotonic() - committed
    assert latency < 5
    assert OutboxEvent.objects.filter(aggregate_id=tasks["assessment"], event_type="TaskReady").count() == 1
