"""Erasure reaches checklist text and approval comments: a marker planted in both (through the API, with
stored idempotent responses too) is found in no text or JSON column afterwards; the rows, the counters and
every event stay."""

import pytest

from outbox.models import OutboxEvent
from tests.support.api import bearer_client
from tests.workflow.api.test_client_erasure import marker_hits
from workflow.models import ActionPlanApproval, Task, TaskChecklistItem
from workflow.services.tasks import task_transition

pytestmark = pytest.mark.django_db

MARK = "zqx-checklist-marker-53"


def test_erasure_scrubs_checklist_text_and_approval_comments(
    make_task, make_plan, agent, supervisor, admin_user, client_user
):
    agent_api, supervisor_api = bearer_client(agent), bearer_client(supervisor)
    plan = make_plan()
    task = make_task(action_plan=plan)
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    added = agent_api.post(
        f"/api/workflow/tasks/{task.pk}/checklist",
        {"items": [{"text": f"Phone {MARK} at home"}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="plant-1",
    )
    assert added.status_code == 201, added.json()
    agent_api.patch(
        f"/api/workflow/action-plans/{plan.pk}",
        {"approval_policy": {"count": 1, "role": "supervisor"}},
        format="json",
    )
    voted = supervisor_api.post(
        f"/api/workflow/action-plans/{plan.pk}/approvals",
        {"decision": "reject", "comment": f"Ask {MARK} again"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="plant-2",
    )
    assert voted.status_code == 201, voted.json()
    before = marker_hits(MARK)
    assert before.keys() >= {
        "workflow_taskchecklistitem.text",
        "workflow_actionplanapproval.comment",
        "idempotency_idempotencykey.response_body",
    }, before
    assert not [key for key in before if key.startswith("outbox_")]  # events carry no words of either
    events_before = OutboxEvent.objects.count()

    dry = bearer_client(admin_user).post(
        f"/api/workflow/clients/{client_user.pk}/erase", {"dry_run": True}, format="json"
    )
    assert dry.json()["counts"]["workflow_taskchecklistitem"] == 1
    assert dry.json()["counts"]["workflow_actionplanapproval"] == 1
    assert marker_hits(MARK) == before

    erased = bearer_client(admin_user).post(
        f"/api/workflow/clients/{client_user.pk}/erase", {}, format="json"
    )
    assert erased.status_code == 200, erased.json()
    assert marker_hits(MARK) == {}
    assert TaskChecklistItem.objects.get(task=task).text == "[erased]"
    assert ActionPlanApproval.objects.get(action_plan=plan).comment == "[erased]"
    assert Task.objects.get(pk=task.pk).checklist_open_required == 1
    assert OutboxEvent.objects.count() == events_before + 1  # ClientErased
