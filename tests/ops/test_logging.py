"""Structured logs: JSON lines with correlation id, actor, service and bound ids; console lines in dev;
correlation ids carried through Celery."""

import io
import json
import logging

import pytest
import structlog
from celery.app.trace import LOG_RECEIVED
from celery.beat import ScheduleEntry, Scheduler

from ops import celery_signals
from ops.metrics import CELERY_TASKS
from outbox.tasks import outbox_dispatch_task
from polaris import celery_app
from polaris.correlation import get_correlation_id, reset_correlation_id, set_correlation_id
from polaris.logging import logging_config


@pytest.fixture
def capture():
    """Route the named loggers through the project's formatter into a buffer; yields a reader."""

    def attach(fmt: str = "json", names: tuple[str, ...] = ("polaris.test",), level: int = logging.INFO):
        spec = logging_config(fmt=fmt)["formatters"]["structured"]
        formatter = structlog.stdlib.ProcessorFormatter(
            processors=spec["processors"], foreign_pre_chain=spec["foreign_pre_chain"]
        )
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        for name in names:
            logger = logging.getLogger(name)
            attached.append((logger, handler, logger.level))
            logger.addHandler(handler)
            logger.setLevel(level)
        return stream

    attached: list = []
    yield attach
    for logger, handler, level in attached:
        logger.removeHandler(handler)
        logger.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_correlation_id_service_level_and_bound_ids(capture):
    stream = capture()
    token = set_correlation_id("corr-123")
    try:
        with structlog.contextvars.bound_contextvars(event_id="ev-1"):
            structlog.get_logger("polaris.test").info("event.dispatched", handler="automation")
    finally:
        reset_correlation_id(token)

    (line,) = json_lines(stream)
    assert line["event"] == "event.dispatched"
    assert line["correlation_id"] == "corr-123"
    assert line["event_id"] == "ev-1"
    assert line["handler"] == "automation"
    assert line["level"] == "info"
    assert line["logger"] == "polaris.test"
    assert line["service"] == "web"
    assert line["timestamp"].endswith("Z")


def test_standard_library_records_become_json_with_their_extra_fields(capture):
    stream = capture()
    logging.getLogger("polaris.test").warning("retrying %s", "webhook", extra={"delivery_id": 7})
    (line,) = json_lines(stream)
    assert line["event"] == "retrying webhook"
    assert line["delivery_id"] == 7
    assert line["level"] == "warning"


def test_exceptions_are_rendered_into_the_json_line(capture):
    stream = capture()
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("polaris.test").exception("handler failed")
    (line,) = json_lines(stream)
    assert "ValueError: boom" in line["exception"]


def test_console_format_is_readable_key_value_text(capture):
    stream = capture(fmt="console")
    token = set_correlation_id("corr-console")
    try:
        structlog.get_logger("polaris.test").info("task.started", task_id="t-1")
    finally:
        reset_correlation_id(token)
    text = stream.getvalue()
    assert "task.started" in text
    assert "correlation_id=corr-console" in text
    assert "task_id=t-1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logging_config(fmt="xml")


@pytest.mark.django_db
def test_request_lines_name_the_actor_and_echo_the_correlation_id(capture, admin_user, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    from rest_framework.test import APIClient

    stream = capture(names=("polaris.request",))
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.get("/api/workflow/stats", HTTP_X_CORRELATION_ID="req-42")
    assert response.status_code == 200
    assert response["X-Correlation-ID"] == "req-42"

    (line,) = [line for line in json_lines(stream) if line["event"] == "request.finished"]
    assert line["correlation_id"] == "req-42"
    assert line["actor"] == admin_user.pk
    assert line["actor_role"] == "admin"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["path"] == "/api/workflow/stats"
    assert line["duration_ms"] >= 0


@pytest.mark.django_db
def test_probe_requests_are_not_logged(capture, client, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    stream = capture(names=("polaris.request",))
    client.get("/healthz")
    client.get("/metrics")
    assert json_lines(stream) == []


class FakeRequest:
    def __init__(self, **headers):
        self.__dict__.update(headers)


class FakeTask:
    name = "outbox.dispatch"

    def __init__(self, **headers):
        self.request = FakeRequest(**headers)


def test_publishing_a_task_stamps_the_current_correlation_id_into_its_headers():
    headers: dict = {}
    token = set_correlation_id("from-request")
    try:
        celery_signals._publish_correlation(headers=headers)
    finally:
        reset_correlation_id(token)
    assert headers == {"polaris_correlation_id": "from-request"}

    untouched: dict = {}
    celery_signals._publish_correlation(headers=untouched)  # nothing bound: nothing stamped
    assert untouched == {}


def test_a_task_runs_with_the_published_correlation_id_bound_then_unbinds_and_counts(capture):
    stream = capture()
    task = FakeTask(polaris_correlation_id="from-request")
    before = CELERY_TASKS.labels(task.name, "SUCCESS")._value.get()

    celery_signals._bind_task_context(task_id="celery-1", task=task)
    assert get_correlation_id() == "from-request"
    structlog.get_logger("polaris.test").info("dispatch.batch")
    celery_signals._unbind_task_context(task_id="celery-1", task=task, state="SUCCESS")

    (line,) = json_lines(stream)
    assert line["correlation_id"] == "from-request"
    assert line["task_id"] == "celery-1"
    assert line["task_name"] == "outbox.dispatch"
    assert get_correlation_id() is None
    assert "task_id" not in structlog.contextvars.get_contextvars()
    assert CELERY_TASKS.labels(task.name, "SUCCESS")._value.get() == before + 1


def test_a_task_without_a_published_correlation_id_uses_its_task_id():
    task = FakeTask()
    celery_signals._bind_task_context(task_id="celery-2", task=task)
    try:
        assert get_correlation_id() == "celery-2"
    finally:
        celery_signals._unbind_task_context(task_id="celery-2", task=task, state="SUCCESS")


CELERY_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


@pytest.mark.django_db
def test_a_successful_periodic_task_logs_nothing_at_info_and_a_failing_task_logs_an_error(capture):
    stream = capture(names=CELERY_LOGGERS)
    outbox_dispatch_task.apply()  # beat's dispatch, with nothing to do: succeeds
    assert json_lines(stream) == []

    outbox_dispatch_task.apply(args=("unexpected",))  # a TypeError inside the task
    (line,) = json_lines(stream)
    assert line["level"] == "error"
    assert line["logger"] == "celery.app.trace"
    assert "outbox.dispatch" in line["event"]
    assert "raised unexpected" in line["event"]


def test_beat_sending_a_due_task_logs_nothing_at_info_and_its_failure_logs_an_error(capture, monkeypatch):
    stream = capture(names=CELERY_LOGGERS)
    scheduler = Scheduler(celery_app, lazy=True)
    entry = ScheduleEntry(name="outbox-dispatch", task="outbox.dispatch", app=celery_app)
    monkeypatch.setattr(scheduler, "apply_async", lambda *args, **kwargs: None)
    scheduler.apply_entry(entry)
    assert json_lines(stream) == []

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(scheduler, "apply_async", broker_down)
    scheduler.apply_entry(entry)
    (line,) = json_lines(stream)
    assert line["level"] == "error"
    assert "broker down" in line["event"]


def test_a_task_received_logs_nothing_at_info(capture):
    # What the worker's consumer logs on each message (celery.worker.strategy), before the task runs.
    stream = capture(names=CELERY_LOGGERS)
    logger = logging.getLogger("celery.worker.strategy")
    context = {"id": "1", "name": "outbox.dispatch", "args": "()", "kwargs": "{}", "eta": None}
    logger.info(LOG_RECEIVED, context, extra={"data": context})
    assert json_lines(stream) == []


@pytest.mark.django_db
def test_with_log_level_debug_every_task_run_is_shown_at_debug(capture):
    stream = capture(names=CELERY_LOGGERS, level=logging.DEBUG)
    outbox_dispatch_task.apply()
    (line,) = json_lines(stream)
    assert line["level"] == "debug"
    assert "outbox.dispatch" in line["event"]
    assert "succeeded" in line["event"]
