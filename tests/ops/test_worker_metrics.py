"""The Celery worker's counters reach a scrape: its main process serves the prefork children's
multiprocess files on CELERY_METRICS_PORT (the choice documented in docs/operations.md)."""

import socket
import urllib.request

import pytest

from ops.celery_signals import HEADER
from outbox.tasks import outbox_dispatch_task
from tests.support.processes import celery_process, process_env, wait_until

from .promtool import PROMTOOL, promtool
from .test_metrics_endpoint import sample


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return ""


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_worker_counters_are_served_on_the_worker_metrics_port(tmp_path):
    port = free_port()
    directory = tmp_path / "worker-metrics"
    directory.mkdir()
    env = process_env(
        CELERY_METRICS_PORT=str(port),
        CELERY_METRICS_ADDR="127.0.0.1",
        PROMETHEUS_MULTIPROC_DIR=str(directory),
    )
    with celery_process("worker", "--concurrency", "2", "--pool", "prefork", env=env):
        outbox_dispatch_task.apply_async(headers={HEADER: "ops-worker-metrics-test"})

        def dispatched():
            text = fetch(port)
            finished = sum(
                sample(text, "celery_tasks_total", task_name="outbox.dispatch", state=state) or 0
                for state in ("SUCCESS", "FAILURE", "RETRY")
            )
            return text if finished >= 1 else None

        text = wait_until(dispatched, timeout=30)

    # The count came from a prefork child, aggregated by the main process that serves the port.
    assert list(directory.glob("counter_*.db"))
    assert "# TYPE celery_tasks_total counter" in text
    if PROMTOOL is not None:
        result = promtool("check", "metrics", stdin=text.encode())
        assert result.returncode == 0, (result.stdout + result.stderr).decode()


@pytest.mark.parametrize(("pool", "warned"), [("prefork", True), ("solo", False), ("threads", False)])
def test_a_port_without_a_multiprocess_dir_warns_for_process_pools(
    settings, monkeypatch, caplog, pool, warned
):
    import prometheus_client

    from ops import celery_signals

    served = []
    monkeypatch.setattr(prometheus_client, "start_http_server", lambda port, **kwargs: served.append(kwargs))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    settings.WORKER_METRICS_PORT = 9808
    celery_signals._serve_worker_metrics(sender=type("Worker", (), {"pool_cls": pool})())
    assert served[0]["registry"] is prometheus_client.REGISTRY
    assert ("without PROMETHEUS_MULTIPROC_DIR" in caplog.text) is warned


def test_no_port_no_server(settings, monkeypatch):
    import prometheus_client

    from ops import celery_signals

    monkeypatch.setattr(prometheus_client, "start_http_server", lambda *a, **k: pytest.fail("must not serve"))
    settings.WORKER_METRICS_PORT = 0
    celery_signals._serve_worker_metrics(sender=None)
