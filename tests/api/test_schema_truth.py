"""Regressions for what the schema fuzzer (tests/api/test_schema_fuzz.py) found the server and the OpenAPI
document disagreeing on: each server bug fixed, and each constraint now declared, checked here
directly against the server and the generated document."""

import re
from typing import Any

import jsonschema
import pytest
from drf_spectacular.generators import SchemaGenerator

from automation.api.webhook_serializers import URL_PATTERN
from automation.engine import automation_handle_event
from automation.models import Trigger, TriggerTimer, WebhookEndpoint
from automation.selectors import task_timers_block
from automation.services import trigger_create
from outbox.models import OutboxEvent
from tests.support.api import assert_envelope
from workflow.models import ActionPlanState

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def document():
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize("action", ["activate", "archive"])
def test_a_number_for_a_string_field_is_refused_not_coerced(agent_api, make_plan, action):
    # Found: {"reason": 55} was accepted (DRF's CharField turned it into "55"); the schema says string.
    plan = make_plan()
    response = agent_api.post(f"/api/workflow/action-plans/{plan.pk}/{action}/", {"reason": 55})
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert body["details"] == {"reason": ["Must be a string."]}
    plan.refresh_from_db()
    assert plan.state == ActionPlanState.DRAFT


def test_a_string_for_an_integer_or_boolean_is_refused(agent_api, make_task):
    task = make_task()
    response = agent_api.post(
        "/api/workflow/tasks/bulk/",
        {"action": "assign", "filter": {"client": str(task.client_id)}, "params": {"assignee": None}},
    )
    assert assert_envelope(response, 400, "VALIDATION_ERROR")["details"] == {
        "filter": {"client": ["Must be an integer."]}
    }
    response = agent_api.post(
        "/api/workflow/tasks/bulk/",
        {"action": "assign", "ids": [str(task.pk)], "params": {"assignee": None}, "dry_run": "true"},
    )
    assert assert_envelope(response, 400, "VALIDATION_ERROR")["details"] == {
        "dry_run": ["Must be true or false."]
    }


def test_a_nul_in_a_trigger_action_is_a_400_not_a_500(admin_api):
    # Found: a NUL in an action param reached the jsonb column, which refuses it (500).
    action = {"type": "emit_alert", "params": {"message": "bad\x00value"}}
    response = admin_api.post(
        "/api/workflow/triggers/", {"name": "nul", "event_type": "TaskCreated", "actions": [action]}
    )
    assert assert_envelope(response, 400, "VALIDATION_ERROR")["details"] == {
        "actions": ["Null characters are not allowed."]
    }
    assert not Trigger.objects.filter(name="nul").exists()


@pytest.mark.parametrize(
    "url",
    ["https://example.com/h\u00e9", "http://example.com/a b", "http://example.com:65536/", "ftp://x"],
)
def test_a_webhook_url_that_is_no_uri_is_refused(admin_api, url):
    # Found: a URL with raw non-ASCII characters was stored, and the representation (format: uri) broke.
    assert re.match(URL_PATTERN, url) is None
    response = admin_api.post("/api/workflow/webhook-endpoints/", {"name": "e", "url": url})
    assert "url" in assert_envelope(response, 400, "VALIDATION_ERROR")["details"]
    assert not WebhookEndpoint.objects.exists()


def test_the_feed_declares_the_bounds_it_enforces(document, admin_api, settings):
    parameters = {
        p["name"]: p["schema"] for p in document["paths"]["/api/workflow/events/"]["get"]["parameters"]
    }
    assert parameters["wait"]["maximum"] == settings.EVENT_FEED_MAX_WAIT_SECONDS
    assert parameters["limit"]["maximum"] == settings.EVENT_FEED_MAX_LIMIT
    assert re.match(parameters["event_type"]["pattern"], "TaskCreated,TaskUpdated")
    assert not re.match(parameters["event_type"]["pattern"], "TaskCreated, TaskUpdated")
    response = admin_api.get("/api/workflow/events/", {"event_type": "TaskCreated,NoSuchEvent"})
    assert "event_type" in assert_envelope(response, 400, "VALIDATION_ERROR")["details"]


def test_task_slugs_are_declared_as_the_services_check_them(document, agent_api, make_task):
    schema = document["components"]["schemas"]["PatchedTaskUpdateRequest"]["properties"]["task_type"]
    assert not re.match(schema["pattern"], "oDP")
    task = make_task()
    response = agent_api.patch(f"/api/workflow/tasks/{task.pk}/", {"task_type": "oDP"})
    assert "task_type" in assert_envelope(response, 400, "VALIDATION_ERROR")["details"]


def test_the_timers_field_is_declared_as_automation_renders_it(document, agent_api, make_task):
    declared = document["components"]["schemas"]["Task"]["properties"]["timers"]
    item = declared["items"]
    assert item["properties"]["state"]["enum"] == list(TriggerTimer.State.values)
    task = make_task()
    assert task_timers_block(task) == []
    response = agent_api.get(f"/api/workflow/tasks/{task.pk}/")
    assert response.status_code == 200
    assert response.json()["timers"] == []
    assert "timers" in document["components"]["schemas"]["Task"]["required"]


def as_json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: ``nullable: true`` becomes a ``null`` alternative."""
    if isinstance(schema, list):
        return [as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: as_json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted


def test_a_timers_item_matches_its_declared_schema_and_clients_see_none(
    document, admin_api, agent_api, client_api, other_agent_api, make_task
):
    trigger_create(name="intake review due", event_type="TaskCreated", wait_minutes=60)
    task = make_task()
    automation_handle_event(OutboxEvent.objects.get(aggregate_id=task.pk, sequence=1))  # sets the timer
    declared = as_json_schema(document["components"]["schemas"]["Task"]["properties"]["timers"])
    validator = jsonschema.Draft7Validator(declared, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)

    for staff in (admin_api, agent_api):
        timers = staff.get(f"/api/workflow/tasks/{task.pk}/").json()["timers"]
        assert len(timers) == 1
        assert sorted(validator.iter_errors(timers), key=str) == []
        assert (timers[0]["trigger"], timers[0]["state"]) == ("intake review due", "pending")
        assert staff.get("/api/workflow/tasks").json()["results"][0]["timers"] == timers  # the list too

    # Trigger names are internal: the task's own client sees the task, but no timers.
    assert client_api.get(f"/api/workflow/tasks/{task.pk}/").json()["timers"] == []
    assert client_api.get("/api/workflow/tasks").json()["results"][0]["timers"] == []
    assert other_agent_api.get(f"/api/workflow/tasks/{task.pk}/").status_code == 404
    # The check can fail: an item with a key the schema does not declare is refused.
    assert list(validator.iter_errors([{**timers[0], "trigger_predicate": "x"}]))
