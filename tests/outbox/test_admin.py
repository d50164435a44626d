"""Admin: read-only rows, actions that call the services, domain errors shown as messages."""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from outbox.models import HandledEvent, OutboxEvent
from workflow.models import ActionPlan, Task
from workflow.services.tasks import task_transition


@pytest.fixture
def admin_client_(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


APP_OF = {"task": "workflow", "actionplan": "workflow", "outboxevent": "outbox", "handledevent": "outbox"}


def changelist(model: str) -> str:
    return reverse(f"admin:{APP_OF[model]}_{model}_changelist")


def run_action(client, model: str, action: str, pks):
    url = changelist(model)
    response = client.post(url, {"action": action, "_selected_action": [str(pk) for pk in pks]}, follow=True)
    assert response.status_code == 200
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.mark.parametrize("model", ["task", "actionplan", "outboxevent", "handledevent"])
def test_changelists_render(admin_client_, make_task, model):
    task = make_task()
    event = OutboxEvent.objects.get(aggregate_id=task.pk)
    HandledEvent.objects.create(handler="probe", event=event)
    response = admin_client_.get(changelist(model))
    assert response.status_code == 200
    assert admin_client_.get(changelist(model) + "?q=x").status_code == 200


def test_tasks_are_not_added_here_and_closed_ones_are_read_only(admin_client_, make_task, agent):
    task = make_task()
    assert admin_client_.get(reverse("admin:workflow_task_add")).status_code == 403
    # An open task's form edits through task_update (tests/workflow/test_admin.py); a closed one is view-only.
    task_transition(task_id=task.pk, target_state="cancelled", actor=agent)
    response = admin_client_.get(reverse("admin:workflow_task_change", args=[task.pk]))
    assert response.status_code == 200
    assert b'name="title"' not in response.content


def test_task_actions_call_the_transition_service(admin_client_, make_task, agent):
    started = make_task()
    task_transition(task_id=started.pk, target_state="in_progress", actor=agent)
    fresh = make_task()

    messages = run_action(admin_client_, "task", "complete", [started.pk, fresh.pk])

    assert Task.objects.get(pk=started.pk).state == "completed"
    assert Task.objects.get(pk=fresh.pk).state == "new"
    assert any("1 task(s) moved to completed" in m for m in messages)
    assert any("INVALID_TRANSITION" in m for m in messages)
    # The transition wrote its event like any other.
    assert OutboxEvent.objects.filter(aggregate_id=started.pk).count() == 3


def test_plan_actions_report_guard_failures(admin_client_, make_plan):
    plan = make_plan()
    messages = run_action(admin_client_, "actionplan", "activate", [plan.pk])
    assert ActionPlan.objects.get(pk=plan.pk).state == "draft"
    assert any("GUARD_FAILED" in m for m in messages)

    run_action(admin_client_, "actionplan", "archive", [plan.pk])
    assert ActionPlan.objects.get(pk=plan.pk).state == "archived"


def test_replay_action_requeues_dead_events_only(admin_client_, make_task):
    task = make_task()
    dead = OutboxEvent.objects.get(aggregate_id=task.pk)
    OutboxEvent.objects.filter(pk=dead.pk).update(status=OutboxEvent.Status.DEAD, attempts=10)
    task_transition(task_id=task.pk, target_state="in_progress", actor=None)
    live = OutboxEvent.objects.get(aggregate_id=task.pk, sequence=2)

    messages = run_action(admin_client_, "outboxevent", "replay", [dead.pk, live.pk])

    assert OutboxEvent.objects.get(pk=dead.pk).status == "pending"
    assert OutboxEvent.objects.get(pk=live.pk).status == "pending"
    assert any("1 event(s) queued for replay" in m for m in messages)
    assert any("CONFLICT" in m for m in messages)
