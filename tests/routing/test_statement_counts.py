"""What a routing decision and a workload read cost in statements: a fixed number, whatever the agency's
number of workers and tasks (the benchmark's targets rest on it: bench/routing_bench.py)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from routing.models import WorkerProfile
from routing.selectors import decision_for
from routing.workload import workload
from tests.factories import AgentFactory, ClientFactory
from workflow.models import Task

pytestmark = pytest.mark.django_db


def statements(call):
    with CaptureQueriesContext(connection) as captured:
        result = call()
    return len(captured), result


@pytest.fixture
def staffed(agency, make_task, make_rule):
    """Agents of every kind (skills, away with a delegate, loaded), and a client with an assigned task."""

    def make(count):
        agents = [AgentFactory(agency=agency) for _ in range(count)]
        WorkerProfile.objects.create(user=agents[0], service_areas=["benefits"])
        WorkerProfile.objects.create(user=agents[1], away=True, delegate=agents[2])
        for agent in agents[3:]:
            make_task(assignee=agent, priority="high", due_at="2020-01-01T00:00:00Z")
        return agents

    return make


@pytest.mark.parametrize("count", [6, 30])
def test_a_decision_is_three_statements_whatever_the_number_of_workers(
    count, staffed, make_rule, make_task, client_user
):
    agents = staffed(count)
    kept = make_task(assignee=agents[-1])  # the client's worker: client affinity keeps them
    task = make_task(assignee=None)
    make_rule(strategy="least_loaded")
    # The matching rule (with its candidates), the workers with profiles and counters, the client's worker.
    n, (_, decision, workers) = statements(lambda: decision_for(task))
    assert n == 3
    assert len(workers) == count + 1  # the personas' agent too
    assert decision.chosen.user_id == kept.assignee_id
    assert [r["code"] for r in decision.chosen.reasons][:1] == ["CLIENT_AFFINITY"]
    excluded = {item.user_id: [r["code"] for r in item.reasons] for item in decision.excluded}
    assert excluded == {agents[0].pk: ["SKILL_MISMATCH"], agents[1].pk: ["AWAY"]}


def test_without_client_affinity_a_decision_is_two_statements(staffed, make_rule, make_task):
    agents = staffed(6)
    task = make_task(assignee=None, client=ClientFactory(agency=agents[0].agency))
    make_rule(strategy="round_robin", client_affinity=False)
    n, (_, decision, _) = statements(lambda: decision_for(task))
    assert n == 2
    assert decision.chosen is not None


@pytest.mark.parametrize("count", [6, 30])
def test_a_workload_read_is_three_statements_whatever_the_number_of_workers_and_tasks(
    count, staffed, make_task, agency
):
    agents = staffed(count)
    for _ in range(3):
        make_task(assignee=None, service_area="benefits")
    # One grouped pass over the open tasks (with the at-risk join), the unassigned queue, the staff.
    n, data = statements(lambda: workload(agency=agency))
    assert n == 3
    rows = {row["user"]: row for row in data["workers"]}
    assert {rows[agent.pk]["overdue"] for agent in agents[3:]} == {1}
    unassigned = Task.objects.filter(agency=agency, assignee__isnull=True).count()
    assert data["unassigned"]["total"] == unassigned == 3
    assert {area["service_area"]: area["unassigned"] for area in data["service_areas"]}["benefits"] == 3
