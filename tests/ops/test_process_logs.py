"""Worker and beat really log JSON lines through the project's configuration (Celery's own logging is
replaced), and a task's lines carry the correlation id its publisher stamped."""

import json
import re

import pytest

from ops.celery_signals import HEADER
from outbox.tasks import outbox_dispatch_task
from polaris import celery_app
from tests.support.processes import celery_process, process_env, wait_until


def json_lines(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        raw = raw.strip()
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_worker_lines_are_json_with_the_task_correlation_id(tmp_path):
    # DEBUG: a successful dispatch logs its run at DEBUG (at INFO a worker logs failures, not routine runs).
    env = process_env(LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    with celery_process("worker", "--concurrency", "1", "--pool", "solo", env=env) as worker:
        result = outbox_dispatch_task.apply_async(headers={HEADER: "ops-log-test-1"})

        def task_lines():
            return [
                line
                for line in json_lines(worker.output)
                if line.get("task_id") == result.id and line.get("correlation_id") == "ops-log-test-1"
            ]

        lines = wait_until(task_lines, timeout=30)

    everything = json_lines(worker.output)
    assert everything, worker.output
    assert all(line["service"] == "worker" for line in everything)
    assert any("ready." in line["event"] for line in everything)
    assert lines[0]["task_name"] == "outbox.dispatch"
    assert any(line["level"] == "debug" and "succeeded" in line["event"] for line in lines)
    # No line in Celery's own log format ("[2026-01-01 10:00:00,123: INFO/MainProcess] ..."): its
    # logging setup was replaced (only the start-up banner, which is printed, is not JSON).
    celery_format = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+: [A-Z]+/")
    assert not [raw for raw in worker.output.splitlines() if celery_format.match(raw)]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_at_info_a_worker_logs_a_failing_task_and_nothing_of_a_successful_periodic_one(tmp_path):
    env = process_env(LOG_FORMAT="json", LOG_LEVEL="INFO")
    with celery_process("worker", "--concurrency", "1", "--pool", "solo", env=env) as worker:
        succeeded = outbox_dispatch_task.apply_async(headers={HEADER: "ops-log-ok"})
        # Sent by name: apply_async would refuse the argument before it reached the worker.
        failed = celery_app.send_task(
            "outbox.dispatch", args=("unexpected",), headers={HEADER: "ops-log-failed"}
        )

        def failure_lines():
            return [line for line in json_lines(worker.output) if line.get("task_id") == failed.id]

        (failure,) = wait_until(failure_lines, timeout=30)  # one process, in order: the success ran first

    assert failure["level"] == "error"
    assert "raised unexpected" in failure["event"]
    assert failure["correlation_id"] == "ops-log-failed"
    assert not [line for line in json_lines(worker.output) if succeeded.id in json.dumps(line)], worker.output


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_beat_lines_are_json(tmp_path):
    env = process_env(LOG_FORMAT="json", LOG_LEVEL="INFO")
    with celery_process("beat", "-s", str(tmp_path / "schedule"), env=env) as beat:
        pass
    lines = json_lines(beat.output)
    starting = [line for line in lines if line["event"].startswith("beat: Starting")]
    assert starting, beat.output
    assert starting[0]["service"] == "beat"
    assert starting[0]["logger"] == "celery.beat"
