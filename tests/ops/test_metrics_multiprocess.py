"""Multiprocess mode: counters written by several processes into one PROMETHEUS_MULTIPROC_DIR are summed
by the scrape; gunicorn's master empties the directory at start and marks exited workers dead."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from .promtool import promtool, requires_promtool
from .test_metrics_endpoint import sample

ROOT = Path(__file__).resolve().parents[2]

# A process of the stack, in miniature: the env var is set before prometheus_client is imported.
WRITER = """
from outbox.metrics import OUTBOX_EVENTS_PROCESSED
from workflow.metrics import WORKFLOW_TRANSITIONS
WORKFLOW_TRANSITIONS.labels("task", "success").inc(2)
OUTBOX_EVENTS_PROCESSED.labels("TaskCreated", "dispatched").inc()
"""


def run_writer(directory: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", WRITER], cwd=ROOT, env=env, check=True, timeout=60)


@pytest.fixture
def multiproc_dir(tmp_path, monkeypatch):
    directory = tmp_path / "metrics"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    return directory


@pytest.mark.django_db
def test_the_scrape_sums_counters_across_processes(client, multiproc_dir, make_task):
    make_task()
    run_writer(multiproc_dir)
    run_writer(multiproc_dir)

    text = client.get("/metrics").content.decode()

    assert sample(text, "workflow_transition_total", entity_type="task", result="success") == 4
    assert sample(text, "outbox_events_processed_total", event_type="TaskCreated", status="dispatched") == 2
    # The database gauges ride along once, not per process.
    assert sample(text, "active_tasks_total", state="new") == 1
    assert text.count("# TYPE active_tasks_total untyped") == 1


@requires_promtool
@pytest.mark.django_db
def test_promtool_accepts_the_multiprocess_exposition(client, multiproc_dir):
    run_writer(multiproc_dir)
    result = promtool("check", "metrics", stdin=client.get("/metrics").content)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_gunicorn_master_empties_the_directory_at_start_and_marks_dead_workers(multiproc_dir):
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    stale = multiproc_dir / "counter_12345.db"
    stale.write_bytes(b"stale")
    keep = multiproc_dir / "README"
    keep.write_text("not a metrics file")
    live = multiproc_dir / "gauge_livesum_4242.db"

    config["on_starting"](server=None)
    assert not stale.exists()
    assert keep.exists()

    live.write_bytes(b"")
    config["child_exit"](server=None, worker=type("Worker", (), {"pid": 4242})())
    assert not live.exists()  # mark_process_dead removes the dead pid's live gauges


def test_gunicorn_config_logs_through_the_structured_formatter():
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    logging = config["logconfig_dict"]
    assert logging["loggers"]["gunicorn.error"]["handlers"] == ["console"]
    assert logging["formatters"]["structured"]["()"].__name__ == "ProcessorFormatter"
    assert config["accesslog"] is None
