"""Property: whatever sequence of transitions and edits is tried, the event stream and the task agree."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outbox.models import OutboxEvent
from polaris.errors import DomainError
from workflow.models import Task, TaskPriority, TaskState
from workflow.services.tasks import task_assign, task_transition, task_update

STEPS = st.one_of(
    st.tuples(st.just("transition"), st.sampled_from(TaskState.values)),
    st.tuples(st.just("priority"), st.sampled_from(TaskPriority.values)),
    st.tuples(st.just("title"), st.sampled_from(["", "Intake", "Initial intake", "Renamed"])),
    st.tuples(st.just("assign"), st.booleans()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEPS, max_size=14), reasons=st.booleans())
def test_random_transition_and_edit_sequences_keep_the_invariants(make_task, agent, steps, reasons):
    task = make_task()
    written = 0
    for kind, value in steps:
        try:
            if kind == "transition":
                task_transition(
                    task_id=task.pk, target_state=value, actor=agent, reason="Waiting" if reasons else ""
                )
                written += 1
            elif kind == "assign":
                _, event = task_assign(task_id=task.pk, actor=agent, assignee=agent if value else None)
                written += event is not None
            else:
                _, event = task_update(task_id=task.pk, actor=agent, changes={kind: value})
                written += event is not None
        except DomainError:
            pass

    stored = Task.objects.get(pk=task.pk)
    events = list(OutboxEvent.objects.filter(aggregate_id=task.pk).order_by("sequence"))
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))  # gap-free
    assert len(events) == written + 1  # the creation plus each change that wrote
    assert stored.version == len(events)
    state_events = [e for e in events if e.event_type in ("TaskCreated", "TaskStateChanged")]
    assert state_events[-1].payload["new_state"] == stored.state
    last = events[-1].payload
    assert (last["priority"], last["title"], last["assignee_id"]) == (
        stored.priority,
        stored.title,
        stored.assignee_id,
    )
    for event in events:
        if event.event_type in ("TaskUpdated", "TaskAssigned"):
            assert event.payload["changes"]
            assert all(change["old"] != change["new"] for change in event.payload["changes"].values())
            assert ("assignee" in event.payload["changes"]) == (event.event_type == "TaskAssigned")
