"""Concurrency, each writer on its own connection: two approvals at once are both counted (the plan's row
lock serialises them); two ticks of one task's items at once both land; a tick racing a completion never
lets the completion decide on a stale checklist."""

import threading

import pytest
from django.db import connection

from outbox.models import OutboxEvent
from polaris.errors import ConcurrentModification, GuardFailed
from tests.factories import SupervisorFactory
from workflow.errors import TaskClosed
from workflow.models import ActionPlanApproval, Task
from workflow.services.action_plans import action_plan_activate, action_plan_update
from workflow.services.approvals import action_plan_approval_record
from workflow.services.checklists import checklist_item_set_done, checklist_items_add
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db(transaction=True)
ROUNDS = 5


def at_once(*calls) -> list[object]:
    """Run the calls together (a barrier releases them at once); each outcome is its result or error."""
    barrier = threading.Barrier(len(calls), timeout=10)
    outcomes: list[object] = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            outcomes[index] = call()
        except Exception as exc:  # the outcome under test
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_approvals_at_once_are_both_counted(make_plan, make_task, agent, agency):
    approvers = [SupervisorFactory(agency=agency) for _ in range(2)]
    for _ in range(ROUNDS):
        plan = make_plan()
        make_task(action_plan=plan)
        action_plan_update(
            action_plan_id=plan.pk,
            actor=agent,
            changes={"approval_policy": {"count": 2, "role": "supervisor"}},
        )
        outcomes = at_once(
            *(
                lambda who=who, plan=plan: action_plan_approval_record(
                    action_plan_id=plan.pk, actor=who, decision="approve"
                )
                for who in approvers
            )
        )
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
        assert ActionPlanApproval.objects.filter(action_plan=plan).count() == 2
        counts = sorted(o[2].payload["approvals"] for o in outcomes)
        assert counts == [1, 2]
        events = list(OutboxEvent.objects.filter(aggregate_id=plan.pk).order_by("sequence"))
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        plan, _ = action_plan_activate(action_plan_id=plan.pk, actor=agent)
        assert plan.state == "active"


def test_two_ticks_at_once_both_land(make_task, agent):
    for _ in range(ROUNDS):
        task = make_task()
        first, second = checklist_items_add(task, [{"text": "a"}, {"text": "b"}], actor=agent)
        outcomes = at_once(
            *(
                lambda item=item, task=task: checklist_item_set_done(
                    task_id=task.pk, item_id=item.pk, done=True, actor=agent
                )
                for item in (first, second)
            )
        )
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
        stored = Task.objects.get(pk=task.pk)
        assert stored.checklist_open_required == 0
        assert stored.version == 4
        sequences = list(
            OutboxEvent.objects.filter(aggregate_id=task.pk)
            .order_by("sequence")
            .values_list("sequence", flat=True)
        )
        assert sequences == [1, 2, 3, 4]


def test_an_untick_racing_a_completion_never_completes_with_the_item_open(make_task, agent):
    for _ in range(ROUNDS):
        task = make_task()
        (item,) = checklist_items_add(task, [{"text": "must"}], actor=agent)
        checklist_item_set_done(task_id=task.pk, item_id=item.pk, done=True, actor=agent)
        task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
        outcomes = at_once(
            lambda task=task, item=item: checklist_item_set_done(
                task_id=task.pk, item_id=item.pk, done=False, actor=agent
            ),
            lambda task=task: task_transition(task_id=task.pk, target_state="completed", actor=agent),
        )
        stored = Task.objects.get(pk=task.pk)
        untick, complete = outcomes
        if stored.state == "completed":
            # The completion went first; the untick then found the task closed.
            assert not isinstance(complete, Exception)
            assert isinstance(untick, TaskClosed), outcomes
            assert stored.checklist_open_required == 0
        else:
            assert stored.checklist_open_required == 1
            assert isinstance(complete, ConcurrentModification | GuardFailed), outcomes
            assert not isinstance(untick, Exception), outcomes
