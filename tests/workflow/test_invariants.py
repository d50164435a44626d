"""Property: whatever sequence of transitions is tried, the event stream and the state agree."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outbox.models import OutboxEvent
from polaris.errors import DomainError
from workflow.models import Task, TaskState
from workflow.services.tasks import task_transition


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(targets=st.lists(st.sampled_from(TaskState.values), max_size=12), reasons=st.booleans())
def test_random_transition_sequences_keep_the_invariants(make_task, agent, targets, reasons):
    task = make_task()
    succeeded = 0
    for target in targets:
        try:
            task_transition(
                task_id=task.pk, target_state=target, actor=agent, reason="Waiting" if reasons else ""
            )
            succeeded += 1
        except DomainError:
            pass

    stored = Task.objects.get(pk=task.pk)
    events = list(OutboxEvent.objects.filter(aggregate_id=task.pk).order_by("sequence"))
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))  # gap-free
    assert len(events) == succeeded + 1  # the creation plus each success
    assert events[-1].payload["new_state"] == stored.state
    assert stored.version == len(events)
