"""The ``assign`` automation action routes the source task as ``POST /tasks/{id}/route`` does."""

import pytest

from automation.actions.registry import actions_validate
from automation.engine import automation_handle_event
from automation.models import TriggerExecution
from automation.services import trigger_create
from outbox.models import OutboxEvent
from workflow.models import Task

pytestmark = pytest.mark.django_db


def test_the_assign_action_routes_the_task_with_its_reasons(make_task, make_rule, team):
    assert actions_validate([{"type": "assign", "params": {}}]) == []
    assert actions_validate([{"type": "assign", "params": {"colour": 1}}]) != []
    task = make_task(assignee=None, task_type="review")  # no rule yet: created unassigned
    rule = make_rule(match_task_types=["review"], strategy="round_robin", candidates=team[1:3])
    trigger_create(
        name="route reviews",
        event_type="TaskCreated",
        predicate='task_type == "review"',
        actions=[{"type": "assign", "params": {}}],
    )
    created = OutboxEvent.objects.get(aggregate_id=task.pk, event_type="TaskCreated")
    automation_handle_event(created)
    assert Task.objects.get(pk=task.pk).assignee_id == team[1].pk
    assigned = OutboxEvent.objects.get(aggregate_id=task.pk, event_type="TaskAssigned")
    assert assigned.causation_id == created.id
    assert assigned.payload["routing"]["rule"] == str(rule.pk)
    execution = TriggerExecution.objects.get(event=created)
    assert execution.outcome == "matched"
    (result,) = execution.action_results
    assert (result["type"], result["status"], result["assigned"]) == ("assign", "done", True)
    assert (result["assignee_id"], result["rule"]) == (team[1].pk, str(rule.pk))
    assert OutboxEvent.objects.filter(aggregate_id=task.pk, event_type="TaskAssigned").count() == 1
