"""Making a plan from a template: one transaction, every task with its event, waiting tasks guarded."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from careplans.models import TaskDependency, TemplatedPlan, TemplatedTask
from outbox.models import OutboxEvent
from sla.models import SLARecord
from tests.support.api import assert_envelope
from workflow.models import ActionPlan, Task

pytestmark = pytest.mark.django_db

PLANS = "/api/workflow/action-plans"
MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def instantiate(api, template, client_user, **body):
    return api.post(PLANS, {"client": client_user.pk, "template": template.pk, **body}, format="json")


def test_the_plan_and_all_its_tasks_with_their_events(api_for, agent, make_template, client_user):
    template = make_template()
    with time_machine.travel(MONDAY_9, tick=False):
        response = instantiate(api_for(agent), template, client_user)  # a token minted at that time
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["title"] == "Housing pathway"
    assert body["state"] == "draft"
    plan = ActionPlan.objects.get(pk=body["id"])
    tasks = {link.key: link.task for link in TemplatedTask.objects.select_related("task").filter(plan=plan)}
    assert set(tasks) == {"intake", "assessment", "housing", "benefits", "review"}
    assert TemplatedPlan.objects.get(plan=plan).version.number == 1

    # Only the root is ready: it has its due date (4 business hours, 24x7 with no calendar) and SLA clock.
    intake = tasks["intake"]
    assert intake.waiting_on == []
    assert intake.due_at == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert SLARecord.objects.filter(task=intake).exists()
    assert tasks["assessment"].waiting_on == [intake.pk]
    assert tasks["assessment"].due_at is None
    assert sorted(tasks["review"].waiting_on) == sorted([tasks["housing"].pk, tasks["benefits"].pk])
    assert not SLARecord.objects.filter(task=tasks["review"]).exists()
    assert TaskDependency.objects.filter(task__action_plan=plan).count() == 5

    created = OutboxEvent.objects.filter(event_type="TaskCreated", payload__action_plan_id=str(plan.pk))
    assert created.count() == 5
    review_event = created.get(aggregate_id=tasks["review"].pk)
    assert review_event.sequence == 1
    assert review_event.payload["template"] == {"id": template.pk, "version": 1, "key": "review"}
    assert sorted(review_event.payload["waiting_on"]) == sorted(str(pk) for pk in tasks["review"].waiting_on)
    assert OutboxEvent.objects.filter(event_type="ActionPlanCreated", aggregate_id=plan.pk).count() == 1

    summary = {task["id"]: task for task in body["tasks"]}
    assert summary[str(tasks["assessment"].pk)]["waiting_on"] == [str(intake.pk)]


def test_a_waiting_task_shows_waiting_on_and_its_start_is_refused(
    agent_api, make_template, client_user, agent
):
    plan_id = instantiate(agent_api, make_template(), client_user).json()["id"]
    assessment = Task.objects.get(action_plan_id=plan_id, task_type="assessment")
    assessment.assignee = agent
    assessment.save(update_fields=["assignee"])
    shown = agent_api.get(f"/api/workflow/tasks/{assessment.pk}").json()
    assert shown["waiting_on"]
    assert shown["due_at"] is None
    assert "in_progress" not in shown["available_transitions"]
    refused = agent_api.post(
        f"/api/workflow/tasks/{assessment.pk}/transition", {"target_state": "in_progress"}, format="json"
    )
    body = assert_envelope(refused, 400, "GUARD_FAILED")
    assert body["details"]["guards"] == ["dependencies_met"]


def test_the_guard_is_listed_in_metadata(agent_api):
    machines = agent_api.get("/api/workflow/metadata").json()
    text = str(machines)
    assert "dependencies_met" in text


def test_instantiation_is_a_fixed_number_of_statements(agent_api, make_template, client_user):
    template = make_template(
        [
            {"key": f"t{n}", "title": f"T{n}", "task_type": "t", "depends_on": [f"t{n - 1}"] if n else []}
            for n in range(20)
        ]
    )
    instantiate(agent_api, template, client_user)  # warm caches
    with CaptureQueriesContext(connection) as captured:
        response = instantiate(agent_api, template, client_user)
    assert response.status_code == 201
    inserts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    # plan, its event, link, 20 tasks, 20 links, 19 dependencies, 20 events, the idempotency row aside:
    # each group is one statement whatever the number of tasks.
    assert len([sql for sql in inserts if '"workflow_task"' in sql.split("(")[0]]) == 1
    assert len([sql for sql in inserts if "outbox_outboxevent" in sql.split("(")[0]]) == 2
    assert len(captured.captured_queries) < 30, len(captured.captured_queries)


def test_bad_references_and_scopes(
    agent_api, client_api, make_template, client_user, other_client, admin_api
):
    template = make_template()
    assert_envelope(instantiate(agent_api, template, other_client), 400, "VALIDATION_ERROR")
    missing = agent_api.post(PLANS, {"client": client_user.pk, "template": 2**40}, format="json")
    assert_envelope(missing, 404, "NOT_FOUND")
    assert_envelope(instantiate(client_api, template, client_user), 403, "PERMISSION_DENIED")
    assert_envelope(agent_api.post(PLANS, {"client": client_user.pk}, format="json"), 400, "VALIDATION_ERROR")
    assert not ActionPlan.objects.exists()
    assert not Task.objects.exists()


def test_a_failure_midway_leaves_nothing(agent_api, make_template, client_user, monkeypatch):
    from careplans.services import instantiation

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(instantiation, "_plan_extras_apply", explode)
    agent_api.raise_request_exception = False
    response = instantiate(agent_api, make_template(), client_user)
    assert response.status_code == 500
    assert not ActionPlan.objects.exists()
    assert not Task.objects.exists()
    assert not OutboxEvent.objects.filter(event_type="TaskCreated").exists()
