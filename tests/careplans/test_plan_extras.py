"""A plan made from a template gets its blueprints' checklists and its version's approval policy, and the
workflow's guards then hold it: completion waits for required items, activation for approvals."""

import pytest

from careplans.services.instantiation import plan_instantiate
from careplans.services.templates import plan_template_create
from outbox.models import OutboxEvent
from polaris.errors import GuardFailed, ValidationFailed
from tests.factories import SupervisorFactory
from workflow.models import ActionPlan, Task, TaskChecklistItem
from workflow.services.action_plans import action_plan_activate
from workflow.services.approvals import action_plan_approval_record

pytestmark = pytest.mark.django_db

BLUEPRINTS = [
    {
        "key": "intake",
        "title": "Intake",
        "task_type": "intake",
        "checklist": [{"text": "ID seen", "required": True}, {"text": "Leaflet given", "required": False}],
    },
    {"key": "assess", "title": "Assessment", "task_type": "assessment", "depends_on": ["intake"]},
]


def test_tasks_get_their_checklists_and_the_plan_its_approval_policy(agent, agency, client_user):
    supervisor = SupervisorFactory(agency=agency)
    template = plan_template_create(
        actor=None,
        agency=agency,
        name="With extras",
        blueprints=BLUEPRINTS,
        requires_approval={"count": 1, "approvers": [supervisor.pk]},
    )
    plan = plan_instantiate(actor=agent, template_id=template.pk, client=client_user, agency=agency)

    tasks = {task.title: task for task in plan.tasks.all()}
    items = TaskChecklistItem.objects.filter(task=tasks["Intake"]).order_by("position")
    assert [(item.text, item.required) for item in items] == [("ID seen", True), ("Leaflet given", False)]
    assert tasks["Intake"].checklist_open_required == 1
    assert tasks["Assessment"].checklist_size == 0
    # The items' event follows the task's creation in its stream (by the system, as any batch add).
    intake = Task.objects.get(pk=tasks["Intake"].pk)
    assert (intake.version, intake.checklist_size, intake.checklist_open_required) == (2, 2, 1)
    stream = OutboxEvent.objects.filter(aggregate_id=intake.pk).order_by("sequence")
    assert [(e.event_type, e.sequence, e.actor_id) for e in stream] == [
        ("TaskCreated", 1, agent.pk),
        ("TaskChecklistItemsAdded", 2, None),
    ]
    added = stream[1].payload
    assert [item["item_id"] for item in added["items"]] == [str(item.pk) for item in items]
    assert (added["checklist_size"], added["checklist_open_required"]) == (2, 1)

    plan.refresh_from_db()
    assert plan.approval_policy == {"count": 1, "approvers": [supervisor.pk]}
    with pytest.raises(GuardFailed) as refused:
        action_plan_activate(action_plan_id=plan.pk, actor=agent)
    assert "approved" in str(refused.value.details)
    action_plan_approval_record(action_plan_id=plan.pk, actor=supervisor, decision="approve")
    activated, _ = action_plan_activate(action_plan_id=plan.pk, actor=agent)
    assert activated.state == "active"


def test_a_listed_approver_who_left_the_agency_refuses_the_plan(agent, agency, other_agency, client_user):
    supervisor = SupervisorFactory(agency=agency)
    template = plan_template_create(
        actor=None,
        agency=agency,
        name="Approver left",
        blueprints=BLUEPRINTS,
        requires_approval={"count": 1, "approvers": [supervisor.pk]},
    )
    supervisor.agency = other_agency
    supervisor.save(update_fields=["agency"])
    with pytest.raises(ValidationFailed) as refused:
        plan_instantiate(actor=agent, template_id=template.pk, client=client_user, agency=agency)
    assert "approval_policy" in refused.value.details
    assert not ActionPlan.objects.filter(title="Approver left").exists()  # nothing half-made
