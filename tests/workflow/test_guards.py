"""Each guard refuses with its own name and writes nothing; each passes once satisfied."""

import pytest

from outbox.models import OutboxEvent
from polaris.errors import GuardFailed
from workflow.models import ActionPlan, Task
from workflow.services.action_plans import action_plan_activate, action_plan_archive
from workflow.services.tasks import task_transition


def event_count(obj) -> int:
    return OutboxEvent.objects.filter(aggregate_id=obj.pk).count()


def test_starting_work_needs_an_assignee(make_task, agent):
    task = make_task(assignee=None)
    with pytest.raises(GuardFailed) as raised:
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    assert raised.value.guards == ["has_assignee"]
    assert raised.value.details["guards"] == ["has_assignee"]
    assert Task.objects.get(pk=task.pk).state == "new"
    assert event_count(task) == 1

    Task.objects.filter(pk=task.pk).update(assignee=agent)
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    assert Task.objects.get(pk=task.pk).state == "in_progress"


@pytest.mark.parametrize("reason", ["", "   "])
def test_blocking_needs_a_reason(make_task, agent, reason):
    task = make_task()
    with pytest.raises(GuardFailed) as raised:
        task_transition(task_id=task.pk, target_state="blocked", actor=agent, reason=reason)
    assert raised.value.guards == ["has_blocked_reason"]
    stored = Task.objects.get(pk=task.pk)
    assert (stored.state, stored.blocked_reason) == ("new", "")
    assert event_count(task) == 1

    task_transition(task_id=task.pk, target_state="blocked", actor=agent, reason="Awaiting ID")
    assert Task.objects.get(pk=task.pk).state == "blocked"


def test_activating_a_plan_needs_a_task(make_plan, make_task, agent):
    plan = make_plan()
    with pytest.raises(GuardFailed) as raised:
        action_plan_activate(action_plan_id=plan.pk, actor=agent)
    assert raised.value.guards == ["has_tasks"]
    assert ActionPlan.objects.get(pk=plan.pk).state == "draft"
    assert event_count(plan) == 1

    make_task(action_plan=plan)
    action_plan_activate(action_plan_id=plan.pk, actor=agent)
    assert ActionPlan.objects.get(pk=plan.pk).state == "active"


def test_archiving_an_active_plan_needs_every_task_closed(make_plan, make_task, agent):
    plan = make_plan()
    done = make_task(action_plan=plan)
    open_task = make_task(action_plan=plan)
    action_plan_activate(action_plan_id=plan.pk, actor=agent)
    task_transition(task_id=done.pk, target_state="cancelled", actor=agent)

    with pytest.raises(GuardFailed) as raised:
        action_plan_archive(action_plan_id=plan.pk, actor=agent)
    assert raised.value.guards == ["all_tasks_closed"]
    assert ActionPlan.objects.get(pk=plan.pk).state == "active"
    assert event_count(plan) == 2

    task_transition(task_id=open_task.pk, target_state="in_progress", actor=agent)
    task_transition(task_id=open_task.pk, target_state="completed", actor=agent)
    action_plan_archive(action_plan_id=plan.pk, actor=agent)
    assert ActionPlan.objects.get(pk=plan.pk).state == "archived"


def test_a_draft_plan_archives_without_the_closed_tasks_guard(make_plan, make_task, agent):
    plan = make_plan()
    make_task(action_plan=plan)
    action_plan_archive(action_plan_id=plan.pk, actor=agent)
    assert ActionPlan.objects.get(pk=plan.pk).state == "archived"
