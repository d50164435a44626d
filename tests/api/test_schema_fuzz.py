"""The schemathesis gate: the generated OpenAPI document, through the WSGI app with a real JWT,
as an admin and as an agency agent, with **every** schemathesis check (no 5xx; status code, content type,
headers and body conform; positive data is accepted; negative data is rejected; ignored auth, …) and the
stateful phase (links between operations, inferred by schemathesis from the document).

Bounded: a few examples per operation, mode and persona (``max_examples``), a deadline per example and a
timeout per test, and 30 stateful scenarios of up to 10 steps per persona. Zero failures is the bar.
Measured on the 2-core machine (2026-12-05, alone on the CPU lock): the whole file 74 to 77 s, of which the
stateful phase 7 s (admin) and 5 s (agent).
"""

from collections.abc import Iterator
from datetime import timedelta

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from schemathesis.specs.openapi.checks import positive_data_acceptance

from automation.models import Alert

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

POSITIVE_EXAMPLES = 8
NEGATIVE_EXAMPLES = 6
# With ~60 operations to draw from, 30 scenarios sometimes followed only refused links (403 for an agent);
# 60 make at least one accepted link (what the phase asserts) the rule, at ~20 s per persona.
STATEFUL_EXAMPLES = 60
STATEFUL_STEPS = 10
PERSONAS = ["admin", "agent"]
# The time bounds. One example is one request (a stateful step likewise): far under a second each here,
# so a request that takes 10 s is a failure in itself, not noise. Each test has its own timeout besides.
EXAMPLE_DEADLINE = timedelta(seconds=10)
OPERATION_TIMEOUT_SECONDS = 60
STATEFUL_TIMEOUT_SECONDS = 120

# Refusals of schema-valid input that depend on stored data or on who asks, which no request schema can
# express. Each one, and why it is here:
# - INVALID_TRANSITION, GUARD_FAILED: whether a transition is allowed depends on the entity's stored state
#   (and its guards on stored rows: an assignee, open tasks of a plan).
# - "does not exist", "instance with id", "no webhook endpoint with id": a referenced row (user, plan,
#   agency, business calendar, webhook endpoint) that is not stored; the schema can only say "an integer"
#   or "a uuid" ("instance with id" is Django's model validation of a foreign key: "agency instance with
#   id … is not a valid choice").
# - "already exists": a name that must be unique among stored triggers, webhook endpoints, SLA configs.
# - "This field is required." only for the fields of REQUIRED_FOR_WHO_ASKS below, each explained there.
# (An SLA config that ties with a stored active one is a 409 SLA_CONFIG_CONFLICT, not a 400: not here.)
# Everything else schema-valid must be accepted.
# The feed's cursor is valid only as the server minted it (encrypted and authenticated): a generated
# string is refused as INVALID_CURSOR whatever the schema says of its shape, and a minted one beyond the
# head as CURSOR_AHEAD.
# INVALID_TOKEN: a well-formed string that is not a live refresh token (logout) — only a real one is.
DATA_DEPENDENT_CODES = {
    "INVALID_TRANSITION",
    "GUARD_FAILED",
    "INVALID_TOKEN",
    "INVALID_CURSOR",
    "CURSOR_AHEAD",
    # A report's window is a relation between `from` and `to` (at most 366 days, in order) and its dates'
    # range; whether a zone's offset is whole hours depends on the window's dates (reports/window.py).
    "INVALID_WINDOW",
    "TIME_ZONE_NOT_SUPPORTED",
}
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
    # The same window's length: at most BACKTEST_MAX_DAYS (366) days. Also a relation between two fields;
    # `until`'s description does not say it yet (automation/api/serializers.py, reported to the lead).
    "days after since.",
    # An SLA repair's closed window likewise (its scope's description says both): it ends after it
    # starts, and lasts at most 366 days.
    "Must be after closed_from.",
    "days after closed_from.",
    # Checklists and approvals (workflow.services.checklists, .approvals): a task's items counted with
    # those it already has (stored data); and relations between fields of one body, each said in the
    # field's description: an override is for a completion and needs a reason, a rejection needs a comment,
    # a policy's count cannot exceed its approvers.
    "checklist items; this one already has",
    "Only a completion can override the checklist.",
    "Overriding the checklist needs a reason.",
    "A rejection needs a comment saying why.",
    "count cannot exceed the number of approvers.",
)

# Fields the schema must call optional but the server requires from some callers, by (persona, method,
# path): a field missing anywhere else is a schema that lies, and fails the gate.
REQUIRED_FOR_WHO_ASKS: dict[tuple[str, str, str], set[str]] = {
    # A task's ``client`` defaults to the caller only when the caller is a client; admins and agents
    # must name one (the schema serves all three roles). Its ``agency`` defaults to the agent's own,
    # else the named client's: an admin naming a client without an agency must give one (stored data).
    ("admin", "POST", "/api/workflow/tasks/"): {"client", "agency"},
    ("agent", "POST", "/api/workflow/tasks/"): {"client"},
    # A plan's ``agency`` likewise: an admin has none to default from when the client has none.
    ("admin", "POST", "/api/workflow/action-plans/"): {"agency"},
    # A plan template's ``agency`` defaults to a supervisor's own; an admin must name one.
    ("admin", "POST", "/api/workflow/plan-templates/"): {"agency"},
    # A routing rule's agency and the workload's ``?agency=`` default to a supervisor's (a staff member's)
    # own agency; an admin has none and must name it.
    ("admin", "POST", "/api/workflow/routing-rules/"): {"agency"},
    ("admin", "GET", "/api/workflow/workload/"): {"agency"},
}
REQUIRED = "This field is required."

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


def _refusals(details, field: str = "") -> Iterator[tuple[str, str]]:
    """Every (field path, message) in an error's details, nested ones too (a bulk request's ``params``,
    ``filter``): ``("client", "This field is required.")``, ``("params.title", …)``."""
    if isinstance(details, dict):
        for key, value in details.items():
            yield from _refusals(value, f"{field}.{key}" if field else str(key))
    elif isinstance(details, list):
        for value in details:
            yield from _refusals(value, field)
    else:
        yield field, str(details)


def _data_dependent_refusal(body: dict, *, persona: str, method: str, path: str) -> bool:
    if body.get("error_code") in DATA_DEPENDENT_CODES:
        return True
    may_require = REQUIRED_FOR_WHO_ASKS.get((persona, method, path), set())

    def explained(field: str, message: str) -> bool:
        if message == REQUIRED:
            return field in may_require
        return any(marker in message for marker in DATA_DEPENDENT_MESSAGES)

    refusals = list(_refusals(body.get("details") or {}))
    return bool(refusals) and all(explained(field, message) for field, message in refusals)


def positive_data_accepted_for(persona: str):
    """schemathesis' ``positive_data_acceptance`` as ``persona`` sees it: minus the data-dependent
    refusals above."""

    def positive_data_accepted(ctx, response, case):
        meta = case.meta
        if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
            return None
        body = response.json()
        operation = case.operation
        if _data_dependent_refusal(
            body, persona=persona, method=operation.method.upper(), path=operation.path
        ):
            return None
        raise AssertionError(f"Schema-valid request rejected: {body}")

    return positive_data_accepted


def test_only_the_known_fields_may_be_required_beyond_the_schema():
    # The exception above is narrow: the same refusal on another field, persona or route is a failure.
    missing_client = {"error_code": "VALIDATION_ERROR", "details": {"client": [REQUIRED]}}
    tasks = {"method": "POST", "path": "/api/workflow/tasks/"}
    assert _data_dependent_refusal(missing_client, persona="agent", **tasks)
    assert not _data_dependent_refusal({"details": {"title": [REQUIRED]}}, persona="admin", **tasks)
    assert not _data_dependent_refusal({"details": {"agency": [REQUIRED]}}, persona="agent", **tasks)
    plans = {"method": "POST", "path": "/api/workflow/action-plans/"}
    assert _data_dependent_refusal({"details": {"agency": [REQUIRED]}}, persona="admin", **plans)
    assert not _data_dependent_refusal(missing_client, persona="admin", **plans)
    nested = {"details": {"params": {"client": [REQUIRED]}}}
    assert not _data_dependent_refusal(
        nested, persona="admin", method="POST", path="/api/workflow/tasks/bulk/"
    )
    assert _data_dependent_refusal(
        {"details": {"assignee": ["Invalid pk - object does not exist."]}}, persona="admin", **tasks
    )


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
        yield schema, {"Authorization": f"Bearer {token}"}, ids, positive_data_accepted_for(request.param)
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


def run_operation(operation, *, mode, examples, headers, path_parameters, accepted_check):
    known = {name: value for name, value in path_parameters.items() if f"{{{name}}}" in operation.path}
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=known or None)

    @settings(
        max_examples=examples,
        deadline=EXAMPLE_DEADLINE,
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
            additional_checks=[accepted_check],
        )

    check()


@pytest.mark.timeout(OPERATION_TIMEOUT_SECONDS)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_positive_cases_conform(fuzz_env, method, path):
    schema, headers, real_ids, accepted_check = fuzz_env
    operation = schema[path][method]
    for path_parameters in ({}, real_ids) if "{" in path else ({},):
        run_operation(
            operation,
            mode=schemathesis.GenerationMode.POSITIVE,
            examples=POSITIVE_EXAMPLES,
            headers=headers,
            path_parameters=path_parameters,
            accepted_check=accepted_check,
        )


@pytest.mark.timeout(OPERATION_TIMEOUT_SECONDS)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_negative_cases_are_rejected_without_5xx(fuzz_env, method, path):
    schema, headers, real_ids, accepted_check = fuzz_env
    run_operation(
        schema[path][method],
        mode=schemathesis.GenerationMode.NEGATIVE,
        examples=NEGATIVE_EXAMPLES,
        headers=headers,
        path_parameters=real_ids,
        accepted_check=accepted_check,
    )


@pytest.mark.timeout(STATEFUL_TIMEOUT_SECONDS)
def test_stateful_phase(fuzz_env):
    schema, headers, _, accepted_check = fuzz_env
    machine = schema.as_state_machine()
    links = {
        f"{source} -> {link.target.label}"
        for source, transitions in machine._transitions.operations.items()
        for link in transitions.outgoing
    }
    followed: list[tuple[str, int]] = []  # (link, status) of each step that used a previous answer's values

    class Machine(machine):  # type: ignore[valid-type, misc]
        # Each scenario starts from the fixture's rows: what one scenario wrote is rolled back before the
        # next, so a sequence of steps meets the same kind of answers whenever hypothesis draws it.
        def setup(self):
            super().setup()
            self.savepoint = transaction.savepoint()

        def teardown(self):
            transaction.savepoint_rollback(self.savepoint)
            super().teardown()

        def step(self, input):
            output = super().step(input)
            if input.transition is not None and input.is_applied:
                followed.append(
                    (f"{input.transition.id} -> {input.case.operation.label}", output.response.status_code)
                )
            return output

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                case.validate_response(
                    response,
                    headers=kwargs.get("headers"),  # explicit auth: the auth checks probe without it
                    excluded_checks=[positive_data_acceptance],
                    additional_checks=[accepted_check],
                    transport_kwargs=kwargs,
                )
            except Exception as failure:
                failures.append(failure)
                raise

    failures: list[Exception] = []
    try:
        Machine.run(
            settings=settings(
                # Generate only, as schemathesis runs state machines: replaying a scenario to shrink it
                # meets a changed database.
                phases=[Phase.generate],
                max_examples=STATEFUL_EXAMPLES,
                stateful_step_count=STATEFUL_STEPS,
                deadline=EXAMPLE_DEADLINE,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
        )
    except Flaky:
        # Answers still vary a little between scenarios (new ids, timestamps), so a prefix hypothesis has
        # seen can meet other answers later (other bundles, other enabled rules), and it may stop the run
        # as inconsistent. schemathesis' own runner counts that as no failure; a check that failed before
        # it is the real finding.
        if failures:
            raise failures[0] from None
    # A stateful phase that never follows a link tests nothing the per-operation tests do not: the
    # document must offer links, and the scenarios must use one (a value from an answer in a request).
    assert links, "schemathesis found no links between operations"
    assert followed, f"no scenario followed any of the {len(links)} links"
    assert any(status < 300 for _, status in followed), (
        f"no followed link was answered with success: {followed}"
    )
