"""Moving running plans to a new template version: the dry run says exactly what the application does;
applying twice changes nothing twice; completed tasks are never touched; each change is an event."""

from datetime import timedelta

import pytest

from careplans.models import PlanMigration, TemplatedPlan, TemplatedTask
from careplans.services.instantiation import plan_instantiate
from careplans.services.templates import plan_template_version_create
from outbox.models import OutboxEvent
from polaris.audit.models import AuditEntry
from tests.careplans.conftest import DIAMOND, dispatch
from tests.support.api import assert_envelope
from workflow.models import Task
from workflow.services.tasks import task_assign, task_transition

pytestmark = pytest.mark.django_db

# Version 2: the benefits check goes, a follow-up (after the review) arrives, the assessment gets 16 hours.
V2 = [
    {**DIAMOND[0]},
    {**DIAMOND[1], "due_in_business_hours": 16},
    {**DIAMOND[2]},
    {**DIAMOND[4], "depends_on": ["housing"]},
    {"key": "follow-up", "title": "Follow-up call", "task_type": "follow-up", "depends_on": ["review"]},
    {"key": "welcome", "title": "Welcome pack", "task_type": "welcome", "depends_on": ["intake"]},
]


def complete(task_id, agent):
    task_assign(task_id=task_id, actor=agent, assignee=agent)
    task_transition(task_id=task_id, target_state="in_progress", actor=agent)
    task_transition(task_id=task_id, target_state="completed", actor=agent)


@pytest.fixture
def running(make_template, supervisor, agent, client_user, agency):
    """Three plans on version 1: one fresh, one with the intake done (assessment ready), one whose benefits
    check is completed (completed tasks are never touched, even when the new version drops them)."""
    template = make_template()
    plans = []
    for _ in range(3):
        plan = plan_instantiate(actor=agent, template_id=template.pk, client=client_user, agency=agency)
        plans.append(
            {link.key: link.task_id for link in TemplatedTask.objects.filter(plan=plan)} | {"plan": plan}
        )
    for tasks in plans[1:]:
        complete(tasks["intake"], agent)
    dispatch()
    complete(plans[2]["assessment"], agent)
    dispatch()
    complete(plans[2]["benefits"], agent)
    dispatch()
    plan_template_version_create(actor=supervisor, template_id=template.pk, blueprints=V2)
    return template, plans


def migrate(api, template, **body):
    body = {"from_version": 1, "to_version": 2, **body}
    return api.post(f"/api/workflow/plan-templates/{template.pk}/migrations", body, format="json")


def test_the_dry_run_says_what_applying_does(supervisor_api, running):
    template, plans = running
    preview = migrate(supervisor_api, template)
    assert preview.status_code == 200, preview.json()
    body = preview.json()
    assert (body["dry_run"], body["migration"], body["state"]) == (True, None, "preview")
    by_plan = {item["plan"]: item for item in body["plans"]}
    fresh, started, advanced = (by_plan[str(tasks["plan"].pk)] for tasks in plans)
    assert sorted(item["key"] for item in fresh["add"]) == ["follow-up", "welcome"]
    assert [item["key"] for item in fresh["cancel"]] == ["benefits"]
    assert fresh["redate"] == []  # the assessment is not ready yet: nothing to re-date
    assert [item["key"] for item in started["redate"]] == ["assessment"]
    assert advanced["cancel"] == []  # its benefits check is completed: never touched
    assert body["totals"] == {"plans": 3, "add": 6, "cancel": 2, "redate": 1}
    # The preview wrote nothing.
    assert not PlanMigration.objects.exists()
    assert TemplatedPlan.objects.filter(version__number=1).count() == 3

    applied = migrate(supervisor_api, template, dry_run=False)
    assert applied.status_code == 200, applied.json()
    result = applied.json()
    assert result["state"] == "done"
    assert result["migration"]
    # The same plans, the same changes (task ids for added tasks are only known once applied: null).
    assert sorted(result["plans"], key=lambda p: p["plan"]) == sorted(body["plans"], key=lambda p: p["plan"])

    # And the database agrees with both.
    migration = PlanMigration.objects.get(pk=result["migration"])
    assert (
        migration.plans_migrated,
        migration.tasks_added,
        migration.tasks_cancelled,
        migration.tasks_redated,
    ) == (3, 6, 2, 1)
    assert TemplatedPlan.objects.filter(version__number=2).count() == 3
    assert Task.objects.get(pk=plans[0]["benefits"]).state == "cancelled"
    assert Task.objects.get(pk=plans[2]["benefits"]).state == "completed"
    started_assessment = Task.objects.get(pk=plans[1]["assessment"])
    ready_at = TemplatedTask.objects.get(task_id=started_assessment.pk).ready_at
    assert started_assessment.due_at == ready_at + timedelta(hours=16)
    welcome = Task.objects.get(action_plan=plans[1]["plan"], task_type="welcome")
    assert welcome.waiting_on == []  # its intake is completed: ready at once
    fresh_welcome = Task.objects.get(action_plan=plans[0]["plan"], task_type="welcome")
    assert fresh_welcome.waiting_on == [plans[0]["intake"]]
    assert AuditEntry.objects.filter(action="plan_template.migration_applied").count() == 1
    # Each change an event: the plan's move, the added tasks, the cancellations, the re-dating.
    moved = OutboxEvent.objects.filter(event_type="ActionPlanTemplateMigrated")
    assert moved.count() == 3
    assert (
        OutboxEvent.objects.filter(aggregate_id=started_assessment.pk, event_type="TaskUpdated").count() == 1
    )
    assert OutboxEvent.objects.filter(event_type="TaskCreated", payload__template__version=2).count() == 6


def test_applying_again_changes_nothing_twice(supervisor_api, running):
    template, _ = running
    migrate(supervisor_api, template, dry_run=False)
    events = OutboxEvent.objects.count()
    again = migrate(supervisor_api, template, dry_run=False).json()
    assert again["totals"] == {"plans": 0, "add": 0, "cancel": 0, "redate": 0}
    assert OutboxEvent.objects.count() == events
    assert migrate(supervisor_api, template).json()["plans"] == []


def test_the_filter_narrows_the_plans(supervisor_api, running):
    template, plans = running
    only = str(plans[1]["plan"].pk)
    body = migrate(supervisor_api, template, dry_run=False, filter={"plan_ids": [only]}).json()
    assert [item["plan"] for item in body["plans"]] == [only]
    assert TemplatedPlan.objects.filter(version__number=1).count() == 2


def test_bad_requests(supervisor_api, agent_api, running):
    template, _ = running
    assert_envelope(migrate(supervisor_api, template, to_version=1), 400, "VALIDATION_ERROR")
    assert_envelope(migrate(supervisor_api, template, to_version=9), 400, "VALIDATION_ERROR")
    assert_envelope(migrate(supervisor_api, template, filter={"state": ["nope"]}), 400, "VALIDATION_ERROR")
    assert_envelope(migrate(supervisor_api, template, extra=1), 400, "VALIDATION_ERROR")
    assert_envelope(migrate(agent_api, template), 403, "PERMISSION_DENIED")


def test_with_an_idempotency_key_a_retry_replays_the_answer(supervisor_api, running):
    template, _ = running
    url = f"/api/workflow/plan-templates/{template.pk}/migrations"
    body = {"from_version": 1, "to_version": 2, "dry_run": False}
    first = supervisor_api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="move-1")
    again = supervisor_api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="move-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["totals"]["plans"] == 3
    assert PlanMigration.objects.count() == 1
