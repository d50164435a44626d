"""Schemathesis against the generated OpenAPI document, through the WSGI app with a real JWT.

Bounded: a few examples per operation and mode, so the whole run stays well under two minutes. Asserts no
5xx and that every response conforms to the document (status code, content type, body schema), and that
data the schema forbids is rejected.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

POSITIVE_EXAMPLES = 12
NEGATIVE_EXAMPLES = 8
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_env(settings, admin_user, make_task, make_plan, agent):
    settings.ALLOWED_HOSTS = ["*"]  # the WSGI client sends Host: localhost
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "100000/minute", "user": "100000/minute"},
    }
    plan = make_plan()
    task = make_task(action_plan=plan)
    token = schemathesis_token(admin_user)
    # Like Django's test client (which reconnects these after each of its requests, hence after the token):
    # the WSGI handler must not close the connection that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        # A fresh handler, so its middleware sees this test's settings (not those at import time).
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
        ids = {"task_id": str(task.pk), "action_plan_id": str(plan.pk)}
        yield schema, {"Authorization": f"Bearer {token}"}, ids
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def schemathesis_token(user) -> str:
    from rest_framework.test import APIClient

    response = APIClient().post(
        "/api/auth/token/", {"username": user.username, "password": "pw-Polaris-123"}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["access"]


def _operations() -> list[tuple[str, str]]:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method.upper(), path)
        for path, item in generated["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]


# One test per operation, so a failure names the endpoint.
OPERATIONS = _operations()
IDS = [f"{method} {path}" for method, path in OPERATIONS]


def run_operation(operation, *, mode, examples, headers, path_parameters, checks):
    known = {name: value for name, value in path_parameters.items() if f"{{{name}}}" in operation.path}
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=known or None)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=checks)

    check()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_positive_cases_conform(fuzz_env, method, path):
    schema, headers, real_ids = fuzz_env
    operation = schema[path][method]
    for path_parameters in ({}, real_ids) if "{" in path else ({},):
        run_operation(
            operation,
            mode=schemathesis.GenerationMode.POSITIVE,
            examples=POSITIVE_EXAMPLES,
            headers=headers,
            path_parameters=path_parameters,
            checks=CONFORMANCE,
        )


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_negative_cases_are_rejected_without_5xx(fuzz_env, method, path):
    schema, headers, real_ids = fuzz_env
    run_operation(
        schema[path][method],
        mode=schemathesis.GenerationMode.NEGATIVE,
        examples=NEGATIVE_EXAMPLES,
        headers=headers,
        path_parameters=real_ids,
        checks=[*CONFORMANCE, negative_data_rejection],
    )
