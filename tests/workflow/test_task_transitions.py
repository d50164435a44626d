"""Every (source, target) pair of the task machine: the 8 edges persist with one event, the rest refuse."""

import itertools

import pytest

from outbox.models import OutboxEvent
from polaris.errors import InvalidTransition
from workflow.models import Task, TaskState
from workflow.services.tasks import task_transition

EDGES = {
    ("new", "in_progress"),
    ("new", "blocked"),
    ("new", "cancelled"),
    ("in_progress", "blocked"),
    ("in_progress", "completed"),
    ("in_progress", "cancelled"),
    ("blocked", "in_progress"),
    ("blocked", "cancelled"),
}
PAIRS = list(itertools.product(TaskState.values, repeat=2))


def put_in_state(task: Task, state: str) -> Task:
    Task.objects.filter(pk=task.pk).update(state=state)
    task.refresh_from_db()
    return task


def test_the_graph_has_exactly_the_eight_edges():
    from workflow.machines import edges_of

    assert {(e.source, e.target) for e in edges_of(Task)} == EDGES
    assert len(PAIRS) == 25


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_pair(source, target, make_task, admin_user):
    task = put_in_state(make_task(), source)
    before = OutboxEvent.objects.filter(aggregate_id=task.pk).count()

    if (source, target) in EDGES:
        moved, event = task_transition(
            task_id=task.pk, target_state=target, actor=admin_user, reason="waiting"
        )
        assert Task.objects.get(pk=task.pk).state == target == moved.state
        events = OutboxEvent.objects.filter(aggregate_id=task.pk).order_by("sequence")
        assert events.count() == before + 1
        last = events.last()
        assert last == event
        assert last.event_type == "TaskStateChanged"
        assert last.payload["old_state"] == source
        assert last.payload["new_state"] == target
        assert last.payload["task_type"] == "intake"
        assert last.actor == admin_user
    else:
        with pytest.raises(InvalidTransition) as raised:
            task_transition(task_id=task.pk, target_state=target, actor=admin_user, reason="waiting")
        assert raised.value.message == f"Transition from {source} to {target} not allowed"
        assert Task.objects.get(pk=task.pk).state == source
        assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == before


def test_blocking_records_the_reason_and_resuming_clears_it(make_task, agent):
    task = make_task()
    task_transition(task_id=task.pk, target_state="blocked", actor=agent, reason="Waiting for documents")
    assert Task.objects.get(pk=task.pk).blocked_reason == "Waiting for documents"
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    assert Task.objects.get(pk=task.pk).blocked_reason == ""


def test_unknown_target_state_is_an_invalid_transition(make_task, agent):
    task = make_task()
    with pytest.raises(InvalidTransition):
        task_transition(task_id=task.pk, target_state="teleported", actor=agent)
