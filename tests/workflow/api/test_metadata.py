"""GET /api/workflow/metadata: the machines as django-fsm defines them."""

import pytest

from workflow.machines import machine_describe
from workflow.models import ActionPlan, Task

pytestmark = pytest.mark.django_db


def test_metadata_is_introspected_from_the_models(client_api):
    response = client_api.get("/api/workflow/metadata")
    assert response.status_code == 200
    body = response.json()
    assert body["machines"]["task"] == machine_describe(Task)
    assert body["machines"]["action_plan"] == machine_describe(ActionPlan)
    start = next(t for t in body["machines"]["task"]["transitions"] if t["name"] == "start")
    assert start == {
        "name": "start",
        "source": "new",
        "target": "in_progress",
        "guards": ["has_assignee", "dependencies_met"],
    }
    assert {"TaskCreated", "TaskStateChanged", "ActionPlanActivated"} <= set(body["event_types"])
    # The edit events too (triggers and webhooks may subscribe to them).
    assert {"TaskUpdated", "TaskAssigned", "ActionPlanUpdated"} <= set(body["event_types"])
    assert body["roles"] == ["admin", "supervisor", "agency", "client"]


def test_metadata_needs_authentication(anon_api):
    assert anon_api.get("/api/workflow/metadata/").status_code == 401
