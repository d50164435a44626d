"""The load counters equal a recount after random operations through the services; the repair fixes drift."""

import random

import pytest
from django.core.management import call_command

from polaris.errors import DomainError
from routing.load import load_drift, load_recount, load_repair, load_stored
from routing.models import WorkerLoad
from tests.factories import AgentFactory
from workflow.models import Task
from workflow.services.tasks import task_assign, task_create, task_transition, task_update

pytestmark = pytest.mark.django_db

PRIORITIES = ("low", "normal", "high", "urgent")
TARGETS = ("in_progress", "blocked", "completed", "cancelled")


def test_counters_equal_a_recount_after_300_random_operations(agency, agent, client_user, make_rule):
    workers = [agent, *(AgentFactory(agency=agency) for _ in range(4))]
    make_rule(strategy="least_loaded", candidates=workers[1:3], match_priorities=["urgent"])
    rng = random.Random(23)
    tasks: list = []
    for _ in range(300):
        op = rng.random()
        try:
            if op < 0.3 or not tasks:
                assignee = rng.choice([None, *workers])
                tasks.append(
                    task_create(
                        actor=agent,
                        title="t",
                        task_type="intake",
                        client=client_user,
                        agency=agency,
                        priority=rng.choice(PRIORITIES),
                        assignee=assignee,
                    ).pk
                )
            elif op < 0.55:
                task_assign(task_id=rng.choice(tasks), actor=agent, assignee=rng.choice([None, *workers]))
            elif op < 0.7:
                task_update(
                    task_id=rng.choice(tasks), actor=agent, changes={"priority": rng.choice(PRIORITIES)}
                )
            else:
                task_transition(
                    task_id=rng.choice(tasks),
                    target_state=rng.choice(TARGETS),
                    actor=agent,
                    reason="because",
                )
        except DomainError:
            pass  # refused (closed task, guard): nothing written, nothing counted
    assert Task.objects.filter(state__in=["completed", "cancelled"]).exists()
    assert Task.objects.filter(state="blocked").exists()
    assert load_stored() == load_recount()
    assert load_drift() == {}


def test_the_repair_finds_and_fixes_drift(make_task, agent, capsys):
    make_task(assignee=agent, priority="high")
    make_task(assignee=agent)
    assert load_stored() == {agent.pk: (2, 5)}
    WorkerLoad.objects.filter(pk=agent.pk).update(
        open_tasks=7, weighted_load=1
    )  # written around the services
    Task.objects.filter(assignee=agent).update(priority="low")
    assert load_drift() == {agent.pk: {"stored": (7, 1), "counted": (2, 2)}}
    with pytest.raises(SystemExit):
        call_command("routing_load_repair", "--check")
    assert "stored (7, 1), counted (2, 2)" in capsys.readouterr().out
    assert load_repair() == 1
    assert load_stored() == {agent.pk: (2, 2)}
    call_command("routing_load_repair", "--check")
    assert load_repair() == 0
