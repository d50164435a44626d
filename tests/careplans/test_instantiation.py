"""Making a plan from a template: one transaction, every task with its event, waiting tasks guarded."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from careplans.models import TaskDependency, TemplatedPlan, TemplatedTask
from outbox.models import OutboxEvent
from sla.configs import sla_config_create
from sla.models import BusinessCalendar, SLARecord
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


def _blueprints(size):
    """``size`` tasks: four roots of four task types (two with an SLA config), the rest each waiting for
    two earlier tasks, a required checklist item on every third."""
    return [
        {
            "key": f"t{n}",
            "title": f"Step {n}",
            "task_type": f"pin-{'abcd'[n % 4]}",
            "due_in_business_hours": 8,
            "depends_on": [] if n < 4 else [f"t{n - 4}", f"t{n - 3}"],
            "checklist": [{"text": "Signed", "required": True}] if n % 3 == 0 else [],
        }
        for n in range(size)
    ]


@pytest.fixture
def pin_configs():
    calendar = BusinessCalendar.objects.create(name="Pin office", time_zone="Europe/London")
    return (
        sla_config_create(actor=None, name="Pin A", task_type="pin-a", target_minutes=60, calendar=calendar),
        sla_config_create(actor=None, name="Pin B", task_type="pin-b", target_minutes=120),
    )


# What making a plan costs, whatever its number of tasks: authentication (1); the request's transaction
# (2: here a savepoint in the test's); the client and the agency (2); the template (1); the client's link to
# the agency (1); the plan and its event (2); the version's id, the plan's link to it and the version (3);
# the SLA configs of every task type (1); the tasks (with their checklist counters), their blueprint links,
# dependencies, events (their TaskCreated and TaskChecklistItemsAdded) and the ready tasks' SLA records (5);
# the checklist items (1). The response reads nothing: the plan comes back with what was written.
STATEMENTS = 20  # 19, and the agency's routing rules read once (none here)


def test_instantiation_is_a_fixed_number_of_statements(agent_api, make_template, client_user, pin_configs):
    small, large = make_template(_blueprints(5), name="Five"), make_template(_blueprints(20), name="Twenty")
    instantiate(agent_api, small, client_user)  # warm caches
    counts = {}
    for template in (small, large):
        with CaptureQueriesContext(connection) as captured:
            response = instantiate(agent_api, template, client_user)
        assert response.status_code == 201, response.json()
        counts[template.name] = [query["sql"] for query in captured.captured_queries]
    assert len(counts["Twenty"]) == len(counts["Five"]) == STATEMENTS, "\n".join(counts["Twenty"])
    body = response.json()
    assert len(body["tasks"]) == 20
    assert body["task_counts"]["new"] == 20
    # Every ready task has the record of its own type's config (none for the types without one).
    plan = ActionPlan.objects.get(pk=body["id"])
    records = SLARecord.objects.filter(task__action_plan=plan).select_related("task", "config")
    assert sorted((record.task.task_type, record.config.name) for record in records) == [
        ("pin-a", "Pin A"),
        ("pin-b", "Pin B"),
    ]
    assert {record.calendar_snapshot is not None for record in records} == {True, False}
    rendered = {task["id"]: task for task in body["tasks"]}
    stored = Task.objects.filter(action_plan=plan)
    assert all(rendered[str(task.pk)]["waiting_on"] == [str(pk) for pk in task.waiting_on] for task in stored)
    assert sum(task.checklist_open_required for task in stored) == 7  # t0, t3, …, t18


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
