"""The OpenAPI document validates, covers every endpoint, and documents success and error bodies."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

pytestmark = pytest.mark.django_db

ERROR_CODES = ("400", "401", "403", "404", "409", "429")
ISSUE_ENDPOINTS = {
    ("post", "/api/auth/token/"),
    ("post", "/api/auth/token/refresh/"),
    ("get", "/api/auth/me/"),
    ("post", "/api/workflow/tasks/"),
    ("get", "/api/workflow/tasks/"),
    ("get", "/api/workflow/tasks/{task_id}/"),
    ("post", "/api/workflow/tasks/{task_id}/transition/"),
    ("get", "/api/workflow/tasks/{task_id}/events/"),
    ("post", "/api/workflow/action-plans/"),
    ("get", "/api/workflow/action-plans/"),
    ("get", "/api/workflow/action-plans/{action_plan_id}/"),
    ("post", "/api/workflow/action-plans/{action_plan_id}/activate/"),
    ("post", "/api/workflow/action-plans/{action_plan_id}/archive/"),
    ("get", "/api/workflow/metadata/"),
}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def test_document_validates_against_the_openapi_3_schema(schema):
    validate_schema(schema)  # drf-spectacular's bundled OpenAPI 3.0 JSON schema
    assert schema["openapi"].startswith("3.")


def test_served_document_is_the_generated_one(anon_api, schema):
    response = anon_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert set(response.json()["paths"]) == set(schema["paths"])


def test_every_endpoint_of_the_issue_is_documented(schema):
    documented = {(method, path) for method, path, _ in operations(schema)}
    assert documented >= ISSUE_ENDPOINTS


def test_every_operation_has_a_2xx_schema_and_the_error_envelope(schema):
    problems = []
    for method, path, operation in operations(schema):
        responses = operation["responses"]
        success = [code for code in responses if code.startswith("2")]
        if not success:
            problems.append(f"{method} {path}: no 2xx response")
        for code in success:
            if code != "204" and "schema" not in responses[code].get("content", {}).get(
                "application/json", {}
            ):
                problems.append(f"{method} {path}: {code} has no JSON schema")
        for code in ERROR_CODES:
            content = responses.get(code, {}).get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref") != "#/components/schemas/ErrorEnvelope":
                problems.append(f"{method} {path}: {code} is not the ErrorEnvelope")
        # A POST may take no body (an action such as replay); a body, when declared, has a schema.
        for media_type, body in operation.get("requestBody", {}).get("content", {}).items():
            if "schema" not in body:
                problems.append(f"{method} {path}: {media_type} request body has no schema")
    assert problems == []


def test_error_envelope_component(schema):
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert set(envelope["required"]) == {"success", "error_code", "message", "details"}


def test_extension_points_are_documented(schema):
    task = schema["components"]["schemas"]["Task"]
    assert task["properties"]["sla"]["nullable"] is True
    params = {p["name"] for p in schema["paths"]["/api/workflow/tasks/"]["get"]["parameters"]}
    assert {"state", "task_type", "service_area", "priority", "assignee", "action_plan", "client"} <= params
    assert {"created_after", "created_before", "ordering", "page", "page_size", "sla_status"} <= params


MUTATING_METHODS = {"post", "put", "patch"}
# POSTs that change no state, so there is nothing for a retry to double and no key to honour.
CHANGES_NOTHING = {
    ("post", "/api/auth/token/"),  # issues a token; a retry just issues another
    ("post", "/api/auth/token/refresh/"),
    ("post", "/api/auth/logout/"),  # revokes a token; a retry finds it revoked (400), no second effect
    ("post", "/api/workflow/triggers/{trigger_id}/dry-run/"),  # evaluates, writes nothing
    ("post", "/api/workflow/triggers/{trigger_id}/backtest/"),  # reads history, writes nothing
    ("post", "/api/workflow/webhook-endpoints/{endpoint_id}/test/"),  # sends a ping, records nothing
}


def test_every_state_changing_operation_documents_the_idempotency_key(schema):
    missing = []
    for method, path, operation in operations(schema):
        if method not in MUTATING_METHODS or (method, path) in CHANGES_NOTHING:
            continue
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        if "Idempotency-Key" not in headers:
            missing.append(f"{method} {path}")
    assert missing == []


def test_the_idempotency_allow_lists_name_real_operations(schema):
    documented = {(method, path) for method, path, _ in operations(schema)}
    assert documented >= CHANGES_NOTHING  # a renamed path must not hide a gap
