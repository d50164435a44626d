"""The task and plan change forms edit through the services: one event, the compare-and-swap, and no
Save button where nothing can be saved."""

import pytest
from django.test import Client

from outbox.models import OutboxEvent
from workflow.models import Task
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


def task_form(task, **overrides):
    data = {
        "title": task.title,
        "description": task.description,
        "priority": task.priority,
        "due_at_0": "",
        "due_at_1": "",
        "assignee": task.assignee_id or "",
        "action_plan": task.action_plan_id or "",
        "service_area": task.service_area,
        "task_type": task.task_type,
        "read_version": task.version,
    }
    data.update(overrides)
    return data


def test_the_task_form_saves_through_task_update(admin_client, make_task):
    task = make_task()
    page = admin_client.get(f"/admin/workflow/task/{task.pk}/change/")
    assert 'name="_save"' in page.content.decode()
    response = admin_client.post(
        f"/admin/workflow/task/{task.pk}/change/", task_form(task, priority="urgent")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = Task.objects.get(pk=task.pk)
    assert (stored.priority, stored.version) == ("urgent", 2)
    event = OutboxEvent.objects.get(aggregate_id=task.pk, sequence=2)
    assert event.event_type == "TaskUpdated"
    assert event.payload["changes"] == {"priority": {"old": "normal", "new": "urgent"}}


def test_a_stale_form_is_refused_and_writes_nothing(admin_client, make_task, agent):
    task = make_task()
    stale = task_form(task, title="From a stale page")
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    response = admin_client.post(f"/admin/workflow/task/{task.pk}/change/", stale)
    assert response.status_code == 200
    assert "PRECONDITION_FAILED" in response.content.decode()
    assert Task.objects.get(pk=task.pk).title == "Initial intake"
    assert OutboxEvent.objects.filter(aggregate_id=task.pk).count() == 2


def test_closed_tasks_have_no_save_button(admin_client, make_task, agent):
    task = make_task()
    task_transition(task_id=task.pk, target_state="cancelled", actor=agent)
    page = admin_client.get(f"/admin/workflow/task/{task.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = admin_client.post(f"/admin/workflow/task/{task.pk}/change/", task_form(task, title="No"))
    assert response.status_code == 403
    assert Task.objects.get(pk=task.pk).title == "Initial intake"


def test_the_plan_form_saves_through_action_plan_update(admin_client, make_plan):
    plan = make_plan()
    response = admin_client.post(
        f"/admin/workflow/actionplan/{plan.pk}/change/",
        {"title": "Renamed plan", "description": "", "read_version": plan.version},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert OutboxEvent.objects.get(aggregate_id=plan.pk, sequence=2).event_type == "ActionPlanUpdated"
