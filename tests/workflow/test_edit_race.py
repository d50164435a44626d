"""A PATCH and a transition racing on one task, each on its own connection: one winner; the loser gets
409 CONCURRENT_MODIFICATION, or 412 PRECONDITION_FAILED when it sent If-Match. Sequences stay gap-free."""

import threading

import pytest
from django.db import connection
from django_fsm.signals import pre_transition

from outbox.models import OutboxEvent
from polaris.errors import ConcurrentModification
from workflow.errors import PreconditionFailed
from workflow.models import Task
from workflow.services import edits
from workflow.services.tasks import task_transition, task_update

ROUNDS = 10


def race(task_id, actor, expected_version):
    """Both writers have read the task and passed every check before either claims the stream."""
    barrier = threading.Barrier(2, timeout=10)
    outcomes: dict[str, object] = {}
    original = edits.changes_diff

    def diff_then_wait(instance, changes):
        result = original(instance, changes)
        barrier.wait()
        return result

    def transition_waits(sender, instance, **kwargs):
        barrier.wait()

    def run(name, call):
        try:
            call()
            outcomes[name] = "ok"
        except (ConcurrentModification, PreconditionFailed) as exc:
            outcomes[name] = exc
        finally:
            connection.close()

    calls = {
        "patch": lambda: task_update(
            task_id=task_id, actor=actor, changes={"priority": "urgent"}, expected_version=expected_version
        ),
        "transition": lambda: task_transition(
            task_id=task_id, target_state="in_progress", actor=actor, expected_version=expected_version
        ),
    }
    edits.changes_diff = diff_then_wait
    pre_transition.connect(transition_waits, sender=Task)
    try:
        threads = [threading.Thread(target=run, args=item) for item in calls.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        edits.changes_diff = original
        pre_transition.disconnect(transition_waits, sender=Task)
    return outcomes


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("if_match", "loser_error"), [(False, ConcurrentModification), (True, PreconditionFailed)]
)
def test_patch_and_transition_race_has_one_winner(make_task, agent, if_match, loser_error):
    for _ in range(ROUNDS):
        task = make_task()
        outcomes = race(task.pk, agent, 1 if if_match else None)
        winners = [name for name, outcome in outcomes.items() if outcome == "ok"]
        losers = [outcome for outcome in outcomes.values() if outcome != "ok"]
        assert len(winners) == 1, outcomes
        assert len(losers) == 1, outcomes
        assert type(losers[0]) is loser_error, outcomes
        stored = Task.objects.get(pk=task.pk)
        events = list(OutboxEvent.objects.filter(aggregate_id=task.pk).order_by("sequence"))
        assert [e.sequence for e in events] == [1, 2]
        assert stored.version == 2
        if winners == ["patch"]:
            assert (stored.priority, stored.state, events[-1].event_type) == ("urgent", "new", "TaskUpdated")
        else:
            assert (stored.priority, stored.state, events[-1].event_type) == (
                "normal",
                "in_progress",
                "TaskStateChanged",
            )
