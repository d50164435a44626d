"""Capacity under concurrency: 8 creators at once, real threads and connections, never over capacity."""

import threading
from collections import Counter

import pytest
from django.db import connection

from outbox.models import OutboxEvent
from routing.load import load_recount, load_stored
from routing.models import RoutingRule
from tests.factories import AgencyFactory, AgentFactory, ClientFactory
from workflow.models import Task
from workflow.services.tasks import task_create

CREATORS = 8
TASKS_EACH = 4
CAPACITY = 3


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_creators_never_exceed_capacity():
    agency = AgencyFactory()
    workers = [AgentFactory(agency=agency) for _ in range(3)]
    creator = AgentFactory(agency=agency)
    clients = [ClientFactory(agency=agency) for _ in range(CREATORS)]
    rule = RoutingRule.objects.create(
        agency=agency, name="all", strategy="least_loaded", capacity=CAPACITY, client_affinity=False
    )
    rule.candidates.set(workers)
    barrier = threading.Barrier(CREATORS)
    errors: list[BaseException] = []

    def create(client):
        try:
            barrier.wait(timeout=30)
            for n in range(TASKS_EACH):
                task_create(
                    actor=creator, title=f"Intake {n}", task_type="intake", client=client, agency=agency
                )
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    tasks = Task.objects.filter(agency=agency)
    assert tasks.count() == CREATORS * TASKS_EACH
    per_worker = Counter(tasks.exclude(assignee=None).values_list("assignee_id", flat=True))
    # Every slot filled, none over: 3 workers x 3.
    assert per_worker == {worker.pk: CAPACITY for worker in workers}
    unassigned = list(tasks.filter(assignee=None).values_list("pk", flat=True))
    assert len(unassigned) == CREATORS * TASKS_EACH - 3 * CAPACITY
    failed = OutboxEvent.objects.filter(event_type="TaskRoutingFailed", aggregate_id__in=unassigned)
    assert failed.count() == len(unassigned)
    assert load_stored() == load_recount()
