"""The dry-run's event body is strict (issue #28, schemathesis ST201): unknown keys and values of the
wrong type are a 400 naming them, as the OpenAPI document declares (``additionalProperties: false``)."""

import pytest
from rest_framework.test import APIClient

from automation.services import trigger_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def dry_run(admin_user):
    trigger = trigger_create(
        name="intake done",
        event_type="TaskStateChanged",
        predicate='new_state == "completed"',
        actions=[{"type": "emit_alert", "params": {"message": "x"}}],
    )
    api = APIClient()
    api.force_authenticate(admin_user)

    def post(event):
        return api.post(f"/api/workflow/triggers/{trigger.pk}/dry-run", {"event": event}, format="json")

    return post


BASE = {"event_type": "TaskStateChanged", "payload": {"new_state": "completed"}}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"correlation_id": {}}, "correlation_id"),
        ({"correlation_id": "x" * 65}, "correlation_id"),
        ({"actor_role": 3}, "actor_role"),
        ({"aggregate_type": ["task"]}, "aggregate_type"),
        ({"aggregate_id": {}}, "aggregate_id"),
        ({"aggregate_id": "not-a-uuid"}, "aggregate_id"),
        ({"actor_id": "7"}, "actor_id"),
        ({"actor_id": True}, "actor_id"),
        ({"depth": -1}, "depth"),
        ({"payload": []}, "payload"),
        ({"surprise": 1}, "event.surprise"),
    ],
)
def test_unknown_keys_and_wrong_types_are_a_400_naming_them(dry_run, extra, named):
    response = dry_run({**BASE, **extra})
    assert response.status_code == 400
    assert response.data["error_code"] == "VALIDATION_ERROR"
    assert named in response.data["details"]


def test_every_declared_key_is_accepted(dry_run):
    response = dry_run(
        {
            **BASE,
            "depth": 0,
            "aggregate_id": "6f1c1d9e-7f57-4a7e-9b1e-3c1d4c2a9b10",
            "aggregate_type": "task",
            "actor_role": "agent",
            "actor_id": 7,
            "correlation_id": "abc",
        }
    )
    assert response.status_code == 200, response.data
    assert response.data["matched"] is True


def test_the_schema_declares_the_body_closed():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/workflow/triggers/{trigger_id}/dry-run/"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]["event"]
    assert body["additionalProperties"] is False
