"""Every error, DRF's own included, is the envelope; malformed input never produces a 500."""

import io
import json
import logging
import uuid
from unittest import mock

import pytest
import structlog
from django.test import RequestFactory

from polaris.api.handlers import not_found, server_error
from polaris.logging import logging_config
from tests.support.api import assert_envelope

pytestmark = pytest.mark.django_db

TASKS = "/api/workflow/tasks"


def test_method_not_allowed(agent_api, make_task):
    assert_envelope(agent_api.delete(TASKS), 405, "METHOD_NOT_ALLOWED")
    assert_envelope(agent_api.get(f"{TASKS}/{make_task().pk}/transition"), 405, "METHOD_NOT_ALLOWED")


def test_unsupported_media_type(agent_api):
    response = agent_api.post(TASKS, data="title=x", content_type="text/plain")
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_malformed_json_is_a_validation_error(agent_api):
    response = agent_api.post(TASKS, data='{"title": ', content_type="application/json")
    assert_envelope(response, 400, "VALIDATION_ERROR")


def test_not_acceptable(agent_api):
    assert_envelope(agent_api.get(TASKS, HTTP_ACCEPT="application/xml"), 406, "NOT_ACCEPTABLE")


@pytest.fixture
def error_log():
    """The lines logged at ERROR and above while the test runs, each as the JSON the project writes."""
    spec = logging_config(fmt="json")["formatters"]["structured"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=spec["processors"], foreign_pre_chain=spec["foreign_pre_chain"]
        )
    )
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        root.removeHandler(handler)


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_unexpected_exception_is_a_500_envelope(settings, agent_api, error_log, debug):
    # With DEBUG on Django would answer an escaped exception with its HTML technical page: the API does not.
    settings.DEBUG = debug
    with mock.patch("workflow.api.tasks.task_list", side_effect=RuntimeError("boom")):
        response = agent_api.get(TASKS, HTTP_X_CORRELATION_ID="corr-500")
    assert_envelope(response, 500, "INTERNAL_ERROR")
    assert response["Content-Type"] == "application/json"
    assert b"<html" not in response.content.lower()
    assert b"boom" not in response.content  # no traceback or exception text for the client
    assert response["X-Correlation-ID"] == "corr-500"
    # Logged once, with its traceback and the request's correlation id, so the 500 can be found.
    (line,) = [line for line in error_log() if line["event"].startswith("Unhandled error")]
    assert line["correlation_id"] == "corr-500"
    assert "RuntimeError: boom" in line["exception"]


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_an_exception_outside_a_drf_view_is_a_500_envelope(settings, error_log, debug):
    # A crash before any view runs (a middleware under /api/): Django's own 500 page, or with DEBUG on its
    # HTML technical page, which the envelope middleware replaces.
    from django.contrib.messages.middleware import MessageMiddleware
    from django.test import Client

    settings.DEBUG = debug
    with mock.patch.object(MessageMiddleware, "process_request", side_effect=RuntimeError("boom")):
        response = Client(raise_request_exception=False).get(TASKS, HTTP_X_CORRELATION_ID="corr-mw")
    assert_envelope(response, 500, "INTERNAL_ERROR")
    assert b"<html" not in response.content.lower()
    assert b"boom" not in response.content
    (line,) = [line for line in error_log() if "RuntimeError: boom" in line.get("exception", "")]
    assert line["correlation_id"] == "corr-mw"


def test_django_level_handlers_keep_the_envelope_under_api():
    factory = RequestFactory()
    response = not_found(factory.get("/api/nowhere"), None)
    assert response.status_code == 404
    assert json.loads(response.content)["error_code"] == "NOT_FOUND"
    assert not_found(factory.get("/elsewhere"), None)["Content-Type"].startswith("text/html")
    assert json.loads(server_error(factory.get("/api/x")).content)["error_code"] == "INTERNAL_ERROR"


def test_throttling_is_429_with_retry_after(settings, agent_api, anon_api, agent):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/minute", "user": "3/minute"},
    }
    for _ in range(3):
        assert agent_api.get("/api/auth/me").status_code == 200
    response = agent_api.get("/api/auth/me")
    body = assert_envelope(response, 429, "THROTTLED")
    assert int(response["Retry-After"]) > 0
    assert body["details"]["wait_seconds"] > 0
    for _ in range(2):
        anon_api.post("/api/auth/token/", {"username": agent.username, "password": "x"}, format="json")
    response = anon_api.post("/api/auth/token/", {"username": agent.username, "password": "x"}, format="json")
    assert_envelope(response, 429, "THROTTLED")


MALFORMED_TASK_BODIES = [
    [],
    ["title"],
    "just a string",
    42,
    None,
    {"title": {"nested": True}, "task_type": ["intake"]},
    {"title": "x" * 100_000, "task_type": "intake"},
    {"title": "nul\x00byte", "task_type": "intake"},
    {"title": "T", "task_type": "intake", "client": 10**30},
    {"title": "T", "task_type": "intake", "client": -1},
    {"title": "T", "task_type": "intake", "client": True},
    {"title": "T", "task_type": "intake", "client": 1.5},
    {"title": "T", "task_type": "intake", "client": "١٢"},
    {"title": "T", "task_type": "intake", "agency": "not-a-uuid"},
    {"title": "T", "task_type": "intake", "agency": 12},
    {"title": "T", "task_type": "intake", "action_plan": {"id": 1}},
    {"title": "T", "task_type": "intake", "due_at": "99999-01-01T00:00:00Z"},
    {"title": "T", "task_type": "intake", "due_at": "9999-12-31T23:59:59-14:00"},
    {"title": "T", "task_type": "intake", "due_at": "0001-01-01T00:00:00+14:00"},
    {"title": "T", "task_type": "intake", "priority": None},
    {"title": "T", "task_type": "x" * 65},
    {"title": "T", "task_type": "intake", "description": "nul\x00"},
]


@pytest.mark.parametrize("body", MALFORMED_TASK_BODIES)
def test_malformed_create_bodies_are_4xx_envelopes(agent_api, client_user, body):
    if isinstance(body, dict):
        body = {"client": client_user.pk, **body}  # so validation reaches the odd field
    response = agent_api.post(TASKS, data=json.dumps(body), content_type="application/json")
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"target_state": None},
        {"target_state": ["new"]},
        {"target_state": "blocked", "reason": "a\x00"},
    ],
)
def test_malformed_transition_bodies_are_4xx(agent_api, make_task, body):
    response = agent_api.post(
        f"{TASKS}/{make_task().pk}/transition", data=json.dumps(body), content_type="application/json"
    )
    assert_envelope(response, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "path",
    [
        f"{TASKS}/%00",
        f"{TASKS}/{'9' * 5000}",
        f"{TASKS}/{uuid.uuid4()}/events",
        "/api/workflow/action-plans/%E2%80%AE",
        f"/api/workflow/action-plans/{uuid.uuid4()}/activate",
    ],
)
def test_odd_ids_are_404(agent_api, path):
    method = agent_api.post if path.endswith("activate") else agent_api.get
    assert_envelope(method(path), 404, "NOT_FOUND")


def test_odd_headers_do_not_break_anything(agent_api):
    response = agent_api.post(
        TASKS,
        {"title": "T", "task_type": "intake"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="with space and ünïcode",
        HTTP_X_CORRELATION_ID="<script>" * 50,
    )
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "Idempotency-Key" in body["details"]
    assert response["X-Correlation-ID"] != "<script>" * 50


def test_unrouted_api_paths_use_the_envelope(agent_api):
    assert_envelope(agent_api.get("/api/workflow/no-such-thing/"), 404, "NOT_FOUND")


def test_options_describes_without_error(agent_api):
    assert agent_api.options("/api/workflow/tasks").status_code == 200


def test_browsable_api_is_off_so_html_only_is_406_in_the_envelope(agent):
    from rest_framework.test import APIClient

    browser = APIClient()
    browser.force_login(agent)
    response = browser.get("/api/workflow/tasks", HTTP_ACCEPT="text/html")
    assert_envelope(response, 406, "NOT_ACCEPTABLE")


def test_json_nested_too_deeply_is_a_validation_error(agent_api):
    body = "[" * 100_000 + "]" * 100_000
    response = agent_api.post(TASKS, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="deep")
    assert_envelope(response, 400, "VALIDATION_ERROR")


def test_nesting_just_under_the_parser_limit_is_still_a_4xx(agent_api):
    for depth in (900, 990):
        body = "[" * depth + "]" * depth
        response = agent_api.post(TASKS, data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="d")
        assert response.status_code == 400, depth


def test_oversized_body_is_413(settings, agent_api):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = agent_api.post(
        TASKS, data='{"title": "' + "x" * 20_000 + '"}', content_type="application/json"
    )
    assert_envelope(response, 413, "REQUEST_TOO_LARGE")


def test_too_many_query_parameters_is_400(agent_api):
    response = agent_api.get(TASKS + "?" + "&".join(f"p{i}=1" for i in range(2000)))
    assert_envelope(response, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'\xff\xfe{"a":1}', "application/json"),
        (b'{"title": "\\ud800", "task_type": "intake"}', "application/json"),
        (b"NaN", "application/json"),
    ],
)
def test_malformed_encodings_are_400(agent_api, data, content_type):
    assert_envelope(agent_api.post(TASKS, data=data, content_type=content_type), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
        (b"title=a", "application/x-www-form-urlencoded"),
    ],
)
def test_form_bodies_are_415_the_api_speaks_json_only(agent_api, data, content_type):
    response = agent_api.post(TASKS, data=data, content_type=content_type)
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


# -- domain errors answer with the status their class carries ------------------------------------------------

# Every code the apps raise today, with the status the API has always answered it with.
DOMAIN_STATUSES = {
    "INVALID_TRANSITION": 400,
    "GUARD_FAILED": 400,
    "VALIDATION_ERROR": 400,
    "INVALID_CURSOR": 400,
    "CURSOR_AHEAD": 400,
    "INVALID_TOKEN": 400,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "CONCURRENT_MODIFICATION": 409,
    "CONFLICT": 409,
    "IDEMPOTENCY_KEY_REUSED": 409,
    "TASK_CLOSED": 409,
    "ACTION_PLAN_CLOSED": 409,
    "SLA_CONFIG_CONFLICT": 409,
    "SAVED_VIEW_NAME_TAKEN": 409,
    "SAVED_VIEW_LIMIT_REACHED": 409,
    "TEMPLATE_VERSION_IN_USE": 409,
    "DEPENDENCY_CYCLE": 400,
    "INVALID_TIME_ZONE": 400,
    "TIME_ZONE_NOT_SUPPORTED": 400,
    "INVALID_WINDOW": 400,
    "APPROVAL_NOT_OPEN": 409,
    "APPROVAL_ALREADY_RECORDED": 409,
    "PRECONDITION_FAILED": 412,
}


def _loaded_domain_errors() -> list[type]:
    import polaris.idempotency.services  # noqa: F401 — the modules that define domain errors
    import sla.configs  # noqa: F401
    import workflow.errors  # noqa: F401
    from polaris.api.exceptions import domain_error_classes

    return list(domain_error_classes())


def _answer(error) -> tuple[int, dict]:
    from polaris.api.exceptions import exception_handler

    response = exception_handler(error, {"view": None})
    return response.status_code, response.data


def _bare(cls):
    """An instance without the class's own constructor arguments (``InvalidTransition(source=…)``…)."""
    from polaris.errors import DomainError

    error = cls.__new__(cls)
    DomainError.__init__(error)
    return error


@pytest.mark.parametrize("cls", _loaded_domain_errors(), ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_domain_error_keeps_its_status(cls):
    status, body = _answer(_bare(cls))
    assert body["error_code"] == cls.error_code
    assert status == DOMAIN_STATUSES[cls.error_code], cls


def test_the_status_comes_from_the_class_not_from_a_table_of_codes():
    from polaris import errors

    class OrderLocked(errors.Conflict):  # an app's error joining a family: no entry anywhere else
        error_code = "ORDER_LOCKED"

    class Teapot(errors.DomainError):
        error_code = "TASK_CLOSED"  # a code of the fallback table: the class's own status still wins
        status_code = 418

    assert _answer(OrderLocked())[0] == 409
    assert _answer(errors.PreconditionFailed())[0] == 412
    assert _answer(Teapot())[0] == 418
    assert _answer(errors.DomainError())[0] == 400
    assert _answer(errors.NotFound("gone"))[1] == {
        "success": False,
        "error_code": "NOT_FOUND",
        "message": "gone",
        "details": {},
    }


def test_app_errors_take_their_status_from_the_family_they_join():
    from polaris.idempotency.services import IdempotencyKeyReused
    from workflow.errors import ActionPlanClosed, PreconditionFailed, TaskClosed

    assert [_answer(error)[0] for error in (TaskClosed(), ActionPlanClosed(), IdempotencyKeyReused())] == [
        409
    ] * 3
    assert _answer(PreconditionFailed(expected=1, current=2))[0] == 412
