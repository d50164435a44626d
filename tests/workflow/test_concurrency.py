"""Two transitions racing on one task, each on its own connection: one winner, one ConcurrentModification."""

import threading

import pytest
from django.db import connection
from django_fsm.signals import pre_transition

from outbox.models import OutboxEvent
from polaris.errors import ConcurrentModification
from workflow.models import Task
from workflow.services.tasks import task_transition

ROUNDS = 25


def race(task_id, actor, targets: tuple[str, str]) -> dict[str, object]:
    """Run two transitions at once; both have read the task and passed every check before either writes."""
    barrier = threading.Barrier(2, timeout=10)
    outcomes: dict[str, object] = {}

    def wait_for_rival(sender, instance, **kwargs):
        barrier.wait()

    def attempt(target: str) -> None:
        try:
            task_transition(task_id=task_id, target_state=target, actor=actor)
            outcomes[target] = "ok"
        except ConcurrentModification as exc:
            outcomes[target] = exc
        finally:
            connection.close()

    pre_transition.connect(wait_for_rival, sender=Task)
    try:
        threads = [threading.Thread(target=attempt, args=(target,)) for target in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        pre_transition.disconnect(wait_for_rival, sender=Task)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_racing_transitions_have_exactly_one_winner(make_task, agent):
    for _ in range(ROUNDS):
        task = make_task()
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)

        outcomes = race(task.pk, agent, ("completed", "cancelled"))

        winners = [target for target, outcome in outcomes.items() if outcome == "ok"]
        losers = [o for o in outcomes.values() if isinstance(o, ConcurrentModification)]
        assert len(winners) == 1, outcomes
        assert len(losers) == 1, outcomes
        assert Task.objects.get(pk=task.pk).state == winners[0]
        events = list(OutboxEvent.objects.filter(aggregate_id=task.pk).order_by("sequence"))
        assert [e.sequence for e in events] == [1, 2, 3]
        assert events[-1].payload["new_state"] == winners[0]
