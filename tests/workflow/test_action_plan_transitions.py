"""Every (source, target) pair of the action plan machine (9 pairs, 3 edges)."""

import itertools

import pytest

from outbox.models import OutboxEvent
from polaris.errors import InvalidTransition
from workflow.models import ActionPlan, ActionPlanState, Task
from workflow.services.action_plans import action_plan_transition

EDGES = {("draft", "active"), ("draft", "archived"), ("active", "archived")}
EVENT = {"active": "ActionPlanActivated", "archived": "ActionPlanArchived"}
PAIRS = list(itertools.product(ActionPlanState.values, repeat=2))


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_pair(source, target, make_plan, make_task, admin_user):
    plan = make_plan()
    task = make_task(action_plan=plan)
    Task.objects.filter(pk=task.pk).update(state="completed")  # satisfies both plan guards
    ActionPlan.objects.filter(pk=plan.pk).update(state=source)
    before = OutboxEvent.objects.filter(aggregate_id=plan.pk).count()

    if (source, target) in EDGES:
        _, event = action_plan_transition(action_plan_id=plan.pk, target_state=target, actor=admin_user)
        assert ActionPlan.objects.get(pk=plan.pk).state == target
        assert OutboxEvent.objects.filter(aggregate_id=plan.pk).count() == before + 1
        assert event.event_type == EVENT[target]
        assert (event.payload["old_state"], event.payload["new_state"]) == (source, target)
    else:
        with pytest.raises(InvalidTransition):
            action_plan_transition(action_plan_id=plan.pk, target_state=target, actor=admin_user)
        assert ActionPlan.objects.get(pk=plan.pk).state == source
        assert OutboxEvent.objects.filter(aggregate_id=plan.pk).count() == before
