"""A trigger that feeds itself stops at AUTOMATION_MAX_DEPTH, with a loop_prevented record and an alert."""

import pytest

from automation.models import Alert, TriggerExecution
from automation.services import trigger_create
from outbox.models import OutboxEvent
from tests.automation.conftest import dispatch_all
from workflow.models import Task

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("max_depth", [5, 2])
def test_self_feeding_trigger_stops_at_the_maximum_depth(make_task, settings, max_depth):
    settings.AUTOMATION_MAX_DEPTH = max_depth
    loop = trigger_create(
        name="echo",
        event_type="TaskCreated",
        predicate='task_type == "loop"',
        actions=[{"type": "create_task", "params": {"task_type": "loop", "title": "Echo of $title"}}],
    )
    make_task(task_type="loop", title="Origin")

    dispatch_all(limit=50)

    depths = sorted(OutboxEvent.objects.filter(event_type="TaskCreated").values_list("depth", flat=True))
    assert depths == list(range(max_depth + 1))  # the origin at 0, one echo per hop up to the maximum
    assert Task.objects.filter(task_type="loop").count() == max_depth + 1
    executions = TriggerExecution.objects.filter(trigger=loop)
    assert executions.filter(outcome="matched").count() == max_depth
    prevented = executions.get(outcome="loop_prevented")
    assert prevented.event.depth == max_depth
    alert = Alert.objects.get()
    assert alert.severity == "critical"
    assert alert.trigger_id == loop.pk
    assert "Loop prevented" in alert.message
