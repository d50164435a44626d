"""PATCH on action plans: title and description, one ActionPlanUpdated event, closed plans, filters."""

import pytest

from outbox.models import OutboxEvent
from polaris.erasure import text_digest
from tests.support.api import assert_envelope
from workflow.services.action_plans import action_plan_archive

pytestmark = pytest.mark.django_db

PLANS = "/api/workflow/action-plans"


def test_agent_edits_a_plan_with_one_event(agent_api, make_plan):
    plan = make_plan()
    response = agent_api.patch(
        f"{PLANS}/{plan.pk}", {"title": "Housing first", "description": "x"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["title"], response.json()["version"], response["ETag"]) == (
        "Housing first",
        2,
        '"2"',
    )
    events = list(OutboxEvent.objects.filter(aggregate_id=plan.pk).order_by("sequence"))
    assert [(e.sequence, e.event_type) for e in events] == [
        (1, "ActionPlanCreated"),
        (2, "ActionPlanUpdated"),
    ]
    assert events[-1].payload["changes"] == {
        "title": {"old": "Stable housing", "new": "Housing first"},
        # Free text other than a title enters events as its length and a keyed digest, never its words.
        "description": {"old": text_digest(""), "new": text_digest("x")},
    }
    assert events[-1].payload["changes"]["description"]["new"]["length"] == 1


def test_plan_edit_permissions_and_closed_plans(client_api, other_agent_api, agent_api, make_plan, agent):
    plan = make_plan()
    assert_envelope(
        client_api.patch(f"{PLANS}/{plan.pk}", {"title": "Mine"}, format="json"), 403, "PERMISSION_DENIED"
    )
    assert_envelope(
        other_agent_api.patch(f"{PLANS}/{plan.pk}", {"title": "X"}, format="json"), 404, "NOT_FOUND"
    )
    body = assert_envelope(
        agent_api.patch(f"{PLANS}/{plan.pk}", {"state": "active"}, format="json"), 400, "VALIDATION_ERROR"
    )
    assert body["details"] == {"state": ["This field is read-only."]}
    action_plan_archive(action_plan_id=plan.pk, actor=agent)
    assert_envelope(
        agent_api.patch(f"{PLANS}/{plan.pk}", {"title": "Late"}, format="json"), 409, "ACTION_PLAN_CLOSED"
    )
    stale = agent_api.post(f"{PLANS}/{make_plan().pk}/archive", HTTP_IF_MATCH='"7"')
    assert_envelope(stale, 412, "PRECONDITION_FAILED")


def test_plan_list_filters_on_state_client_and_agency(
    admin_api, make_plan, agent, agency, other_agent, other_client, other_agency
):
    make_plan()
    make_plan(actor=other_agent, client=other_client, agency=other_agency)
    assert admin_api.get(PLANS, {"agency": str(agency.pk)}).json()["count"] == 1
    assert admin_api.get(PLANS, {"client": other_client.pk}).json()["count"] == 1
    assert admin_api.get(PLANS, {"state": "draft"}).json()["count"] == 2
    assert_envelope(admin_api.get(PLANS, {"agency": "nope"}), 400, "VALIDATION_ERROR")
