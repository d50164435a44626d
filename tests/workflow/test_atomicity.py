"""A failure after the transition, inside the service's transaction, leaves neither state nor event."""

import pytest
from django.db import transaction
from django_fsm.signals import post_transition

from outbox.models import OutboxEvent
from workflow.models import Task
from workflow.services.tasks import task_transition


def test_a_failure_after_the_transition_is_written_rolls_back_state_and_event(make_task, agent):
    task = make_task()

    def explode(sender, instance, **kwargs):
        raise RuntimeError("a later receiver failed")

    # Connected after workflow's receiver: the state and the outbox row are already written when it runs.
    post_transition.connect(explode, sender=Task, dispatch_uid="test.explode")
    try:
        with pytest.raises(RuntimeError):
            task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    finally:
        post_transition.disconnect(sender=Task, dispatch_uid="test.explode")

    stored = Task.objects.get(pk=task.pk)
    assert (stored.state, stored.version) == ("new", 1)
    assert list(OutboxEvent.objects.filter(aggregate_id=task.pk).values_list("sequence", flat=True)) == [1]


def test_failure_later_in_the_callers_transaction_rolls_back_both(make_task, agent):
    task = make_task()
    with pytest.raises(RuntimeError), transaction.atomic():
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
        raise RuntimeError("caller failed after the transition")

    assert Task.objects.get(pk=task.pk).state == "new"
    assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == 1


def test_creation_writes_its_event_in_the_same_transaction(make_task):
    with pytest.raises(RuntimeError), transaction.atomic():
        task = make_task()
        assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == 1
        raise RuntimeError("rolled back")
    assert not Task.objects.exists()
    assert not OutboxEvent.objects.exists()
