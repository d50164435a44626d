"""A failure after the transition, inside the service's transaction, leaves neither state nor event."""

import pytest
from django.db import transaction

from workflow.models import OutboxEvent, Task
from workflow.services.tasks import task_transition


def test_failure_while_saving_rolls_back_the_outbox_row(make_task, agent, monkeypatch):
    task = make_task()

    def explode(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    # The receiver has already inserted the outbox row when save() runs.
    monkeypatch.setattr(Task, "save", explode)
    with pytest.raises(RuntimeError):
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    monkeypatch.undo()

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
