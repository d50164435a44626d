"""Routing at creation: the strategies, skills, affinity, absence, capacity, and what the events say."""

from collections import Counter

import pytest

from outbox.models import OutboxEvent
from outbox.projection import payload_for_client
from routing.load import load_recount, load_stored
from tests.factories import ClientFactory
from tests.routing.conftest import profile
from workflow.models import Task
from workflow.services.tasks import task_assign, task_transition

pytestmark = pytest.mark.django_db


def events_of(task, event_type=None):
    events = OutboxEvent.objects.filter(aggregate_id=task.pk).order_by("sequence")
    return [e for e in events if event_type is None or e.event_type == event_type]


def test_round_robin_is_fair_over_100_tasks(team, make_rule, new_task, agency):
    make_rule(strategy="round_robin", candidates=team, client_affinity=False)
    clients = [ClientFactory(agency=agency) for _ in range(5)]
    tasks = [new_task(client=clients[n % 5]) for n in range(100)]
    counts = Counter(task.assignee_id for task in tasks)
    assert set(counts) == {worker.pk for worker in team}
    assert set(counts.values()) == {25}
    # In turn: the order of assignment cycles through the workers by id.
    assert [task.assignee_id for task in tasks[:8]] == [w.pk for w in team] * 2


def test_least_loaded_picks_the_lightest_by_weighted_load(team, make_rule, new_task, make_task):
    a, b, c, d = team
    # a: one urgent (5); b: two normal (4); c: one high (3); d: two low (2) -> d is lightest by weight,
    # though d has as many open tasks as b.
    make_task(assignee=a, priority="urgent")
    make_task(assignee=b)
    make_task(assignee=b)
    make_task(assignee=c, priority="high")
    make_task(assignee=d, priority="low")
    make_task(assignee=d, priority="low")
    make_rule(strategy="least_loaded", candidates=team, client_affinity=False)
    task = new_task()
    assert task.assignee_id == d.pk
    (assigned,) = events_of(task, "TaskAssigned")
    routing = assigned.payload["routing"]
    assert routing["strategy"] == "least_loaded"
    load = next(r for r in routing["reasons"] if r["code"] == "LOAD")
    assert (load["weighted_load"], load["open_tasks"]) == (2, 2)


def test_skills_exclude_workers_who_do_not_cover_the_task(team, make_rule, new_task):
    a, b, c, d = team
    profile(a, service_areas=["benefits"])
    profile(b, task_types=["home-visit"])
    profile(c, service_areas=["housing"], task_types=["intake"])
    profile(d, service_areas=["benefits", "legal"])
    make_rule(strategy="least_loaded", candidates=team, client_affinity=False)
    tasks = [new_task() for _ in range(3)]
    assert {t.assignee_id for t in tasks} == {c.pk}
    (assigned,) = events_of(tasks[0], "TaskAssigned")
    excluded = {
        item["user"]: [r["code"] for r in item["reasons"]] for item in assigned.payload["routing"]["excluded"]
    }
    assert excluded == {a.pk: ["SKILL_MISMATCH"], b.pk: ["SKILL_MISMATCH"], d.pk: ["SKILL_MISMATCH"]}


def test_client_affinity_keeps_the_client_with_their_worker(
    team, make_rule, new_task, make_task, client_user
):
    a, _b, c, _d = team
    for _ in range(3):
        make_task(assignee=c)  # c is the heaviest, but works on this client's open tasks
    make_rule(strategy="least_loaded", candidates=team)
    task = new_task()
    assert task.assignee_id == c.pk
    reasons = events_of(task, "TaskAssigned")[0].payload["routing"]["reasons"]
    assert "CLIENT_AFFINITY" in [r["code"] for r in reasons]
    # Another client goes to the lightest instead.
    assert new_task(client=ClientFactory(agency=client_user.agency)).assignee_id == a.pk


def test_an_away_worker_is_skipped_and_their_delegate_used(team, make_rule, new_task, make_task):
    a, b, c, d = team
    make_task(assignee=b)
    make_task(assignee=c)
    make_task(assignee=c)
    make_task(assignee=d)
    make_task(assignee=d)
    make_task(assignee=d)
    profile(a, away=True, delegate=d)  # a is the lightest, away; their delegate d is the heaviest
    make_rule(strategy="round_robin", candidates=[a], client_affinity=False)
    task = new_task()
    assert task.assignee_id == d.pk
    routing = events_of(task, "TaskAssigned")[0].payload["routing"]
    assert "DELEGATE_FOR" in [r["code"] for r in routing["reasons"]]
    assert routing["excluded"][0]["user"] == a.pk
    assert [r["code"] for r in routing["excluded"][0]["reasons"]] == ["AWAY"]


def test_capacity_is_never_exceeded_and_nobody_eligible_leaves_the_task_unassigned(team, make_rule, new_task):
    a, b = team[:2]
    profile(b, capacity=1)
    make_rule(strategy="least_loaded", candidates=[a, b], capacity=2, client_affinity=False)
    tasks = [new_task(client=ClientFactory(agency=a.agency)) for _ in range(5)]
    assert Counter(t.assignee_id for t in tasks) == {a.pk: 2, b.pk: 1, None: 2}
    stuck = tasks[-1]
    (failed,) = events_of(stuck, "TaskRoutingFailed")
    assert [r["code"] for r in failed.payload["routing"]["reasons"]] == ["NO_ELIGIBLE_WORKER"]
    assert failed.payload["routing"]["reasons"][0]["excluded_for"] == ["AT_CAPACITY"]
    assert failed.sequence == 2
    assert Task.objects.get(pk=stuck.pk).version == 2
    # The stream stays gap-free, and the task is as created.
    assert [e.sequence for e in events_of(stuck)] == [1, 2]


def test_no_rule_no_routing_and_an_assignee_given_is_kept(team, make_rule, new_task, agent):
    task = new_task()
    assert task.assignee_id is None
    assert [e.event_type for e in events_of(task)] == ["TaskCreated"]
    make_rule(match_service_areas=["benefits"], candidates=team)
    assert new_task().assignee_id is None  # housing: the rule does not match
    assert new_task(service_area="benefits").assignee_id in {w.pk for w in team}
    kept = new_task(service_area="benefits", assignee=agent)
    assert kept.assignee_id == agent.pk
    assert len(events_of(kept)) == 1


def test_rules_run_in_order_and_match_on_every_list(team, make_rule, new_task):
    a, b = team[:2]
    make_rule(name="urgent housing", order=1, match_priorities=["urgent"], candidates=[a])
    make_rule(name="everything else", order=2, candidates=[b])
    assert new_task(priority="urgent").assignee_id == a.pk
    assert new_task(priority="low").assignee_id == b.pk


def test_the_event_order_and_the_returned_task_agree_with_the_rows(team, make_rule, new_task):
    make_rule(candidates=team)
    task = new_task()
    stored = Task.objects.get(pk=task.pk)
    assert (task.version, task.assignee_id) == (stored.version, stored.assignee_id) == (2, team[0].pk)
    assert [e.event_type for e in events_of(task)] == ["TaskCreated", "TaskAssigned"]


def test_a_manual_reassignment_of_a_routed_task_is_an_override(team, make_rule, new_task, supervisor):
    make_rule(candidates=team)
    task = new_task()
    task_assign(task_id=task.pk, actor=supervisor, assignee=team[2])
    override = events_of(task, "TaskAssigned")[-1].payload["routing"]
    assert override["override"] is True
    assert (override["routed_assignee_id"], override["by"]) == (team[0].pk, supervisor.pk)


def test_clients_never_see_the_routing_payload(team, make_rule, new_task):
    make_rule(candidates=team)
    task = new_task()
    assigned = events_of(task, "TaskAssigned")[0]
    assert "routing" in assigned.payload
    assert "routing" not in payload_for_client("TaskAssigned", assigned.payload)
    assert payload_for_client("TaskRoutingFailed", {"routing": {}}) == {}


def test_counters_follow_assignment_priority_and_state(team, make_rule, new_task, agent):
    a = team[0]
    make_rule(candidates=[a])
    task = new_task(priority="high")
    assert load_stored()[a.pk] == (1, 3)
    from workflow.services.tasks import task_update

    task_update(task_id=task.pk, actor=agent, changes={"priority": "urgent"})
    assert load_stored()[a.pk] == (1, 5)
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    task_transition(task_id=task.pk, target_state="completed", actor=agent)
    assert a.pk not in load_stored()
    assert load_stored() == load_recount()
