"""The event envelope: lineage (actor, correlation, causation, depth) and history order."""

from outbox.models import OutboxEvent
from polaris.correlation import reset_correlation_id, set_correlation_id
from workflow.selectors import task_events
from workflow.services.tasks import task_create, task_transition


def test_history_is_in_sequence_order(make_task, agent):
    task = make_task()
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    task_transition(task_id=task.pk, target_state="blocked", actor=agent, reason="Waiting")
    history = list(task_events(user=agent, task_id=task.pk))
    assert [e.event_type for e in history] == ["TaskCreated", "TaskStateChanged", "TaskStateChanged"]
    assert [e.payload["new_state"] for e in history] == ["new", "in_progress", "blocked"]
    assert history[2].payload["reason"] == "Waiting"


def test_correlation_id_comes_from_the_argument_or_the_bound_context(make_task, agent):
    explicit = make_task(correlation_id="req-123")
    assert OutboxEvent.objects.get(aggregate_id=explicit.pk).correlation_id == "req-123"

    token = set_correlation_id("bound-456")
    try:
        bound = make_task()
    finally:
        reset_correlation_id(token)
    assert OutboxEvent.objects.get(aggregate_id=bound.pk).correlation_id == "bound-456"

    generated = make_task()
    assert len(OutboxEvent.objects.get(aggregate_id=generated.pk).correlation_id) == 36


def test_work_caused_by_an_event_carries_causation_and_depth(make_task, client_user, agency):
    source = make_task(correlation_id="root-corr")
    cause = OutboxEvent.objects.get(aggregate_id=source.pk)
    follow_up = task_create(
        actor=None,
        title="Assessment",
        task_type="assessment",
        client=client_user,
        agency=agency,
        caused_by=cause,
    )
    event = OutboxEvent.objects.get(aggregate_id=follow_up.pk)
    assert event.causation_id == cause.id
    assert event.depth == cause.depth + 1
    assert event.correlation_id == "root-corr"
    assert event.actor is None
    assert event.envelope()["causation_id"] == str(cause.id)
