"""The schemathesis gate (issue 14): the generated OpenAPI document, through the WSGI app with a real JWT,
as an admin and as an agency agent, with **every** schemathesis check (no 5xx; status code, content type,
headers and body conform; positive data is accepted; negative data is rejected; ignored auth, …) and the
stateful phase (links between operations, inferred by schemathesis from the document).

Bounded: a few examples per operation, mode and persona, and a few short stateful scenarios, so the whole
file stays around two minutes on two cores. Zero failures is the bar.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from automation.models import Alert

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

POSITIVE_EXAMPLES = 8
NEGATIVE_EXAMPLES = 6
STATEFUL_EXAMPLES = 6
STATEFUL_STEPS = 8
PERSONAS = ["admin", "agent"]

# Refusals of schema-valid input that depend on stored data or on who asks, which no request schema can
# express. Each one, and why it is here:
# - INVALID_TRANSITION, GUARD_FAILED: whether a transition is allowed depends on the entity's stored state
#   (and its guards on stored rows: an assignee, open tasks of a plan).
# - "does not exist", "instance with id", "no webhook endpoint with id": a referenced row (user, plan,
#   agency, business calendar, webhook endpoint) that is not stored; the schema can only say "an integer"
#   or "a uuid" ("instance with id" is Django's model validation of a foreign key: "agency instance with
#   id … is not a valid choice").
# - "already exists": a name that must be unique among stored triggers, webhook endpoints, SLA configs.
# - "This field is required.": a field admins must give because they have no agency to default from
#   (who asks), e.g. a task's agency.
# (An SLA config that ties with a stored active one is a 409 SLA_CONFIG_CONFLICT, not a 400: not here.)
# Everything else schema-valid must be accepted.
DATA_DEPENDENT_CODES = {"INVALID_TRANSITION", "GUARD_FAILED"}
DATA_DEPENDENT_MESSAGES = (
    "does not exist",
    "instance with id",
    "no webhook endpoint with id",
    "already exists",
    # A PATCH of ``unless`` alone onto a stored trigger that does not wait (POST declares the pairing).
    "Only a timed trigger",
    # Not stored data but a relation between two fields of one body, which JSON Schema cannot state (the
    # field's description says it): a backtest window must end after it starts.
    "Must be after since.",
)

# The trigger predicate language is declared as the string format "trigger-predicate" (its grammar is
# docs/automation.md, beyond JSON Schema); schemathesis learns valid sentences of it here.
PREDICATES = st.sampled_from(
    [
        "",
        'new_state == "completed"',
        'task_type == "intake" and new_state == "completed"',
        'priority in ["high", "urgent"] or depth > 2',
        'not (old_state == "new") and payload["task_id"] is not None',
    ]
)
schemathesis.openapi.format("trigger-predicate", PREDICATES)
# Action params that are string.Template texts ($name, ${name}, $$) are the format "action-template".
TEMPLATES = st.sampled_from(["Follow up", "Task $task_id moved to ${new_state}", "Costs $$5", "$reason"])
schemathesis.openapi.format("action-template", TEMPLATES)
# A long-poll in a test's transaction would wait its whole time (nothing commits): the feed's maximum
# (which the schema declares) is kept short here.
FEED_MAX_WAIT_SECONDS = 0.2


def _messages(details) -> list[str]:
    """Every message in an error's details, nested ones too (a bulk request's ``params``, ``filter``)."""
    if isinstance(details, dict):
        return [message for value in details.values() for message in _messages(value)]
    if isinstance(details, list):
        return [message for value in details for message in _messages(value)]
    return [str(details)]


def _data_dependent_refusal(body: dict) -> bool:
    if body.get("error_code") in DATA_DEPENDENT_CODES:
        return True
    messages = _messages(body.get("details") or {})
    return bool(messages) and all(
        any(marker in message for marker in DATA_DEPENDENT_MESSAGES) or message == "This field is required."
        for message in messages
    )


def positive_data_accepted(ctx, response, case):
    """schemathesis' ``positive_data_acceptance``, minus the data-dependent refusals above."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    body = response.json()
    if _data_dependent_refusal(body):
        return None
    raise AssertionError(f"Schema-valid request rejected: {body}")


@pytest.fixture(params=PERSONAS)
def fuzz_env(request, settings, admin_user, make_task, make_plan, agent):
    settings.ALLOWED_HOSTS = ["*"]  # the WSGI client sends Host: localhost
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "100000/minute", "user": "100000/minute"},
    }
    settings.EVENT_FEED_MAX_WAIT_SECONDS = FEED_MAX_WAIT_SECONDS
    plan = make_plan()
    task = make_task(action_plan=plan)
    # Data whose rendering the schema must describe: an unacknowledged alert (acknowledged_by: null).
    Alert.objects.create(severity="warning", message="unacknowledged", agency=agent.agency)
    token = schemathesis_token(admin_user if request.param == "admin" else agent)
    # Like Django's test client (which reconnects these after each of its requests, hence after the token):
    # the WSGI handler must not close the connection that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        # A fresh handler, so its middleware sees this test's settings (not those at import time).
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
        # No literals harvested from the loaded Python modules: that walk takes in every test module
        # pytest has imported, so the generated data (and the verdict) would depend on which other tests
        # run in the same process (a full run fed tests' "home-visit" into a trigger predicate).
        schema.config.analysis.constants.enabled = False
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


def run_operation(operation, *, mode, examples, headers, path_parameters):
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
        # Every check schemathesis has (positive-data acceptance with the data-dependent exception above).
        case.validate_response(
            response,
            headers=headers,
            excluded_checks=[positive_data_acceptance],
            additional_checks=[positive_data_accepted],
        )

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
    )


def test_stateful_phase(fuzz_env):
    schema, headers, _ = fuzz_env
    machine = schema.as_state_machine()

    class Machine(machine):  # type: ignore[valid-type, misc]
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(
                response,
                headers=kwargs.get("headers"),  # explicit auth: the auth checks probe without it
                excluded_checks=[positive_data_acceptance],
                additional_checks=[positive_data_accepted],
                transport_kwargs=kwargs,
            )

    Machine.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
