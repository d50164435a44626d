"""The real web server: gunicorn with several workers in multiprocess mode. The master empties the
metrics directory at start, a scrape sums every worker's counters, and a worker that dies keeps its
counts in the total (marked dead, not forgotten)."""

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.processes import process_env, wait_until

from .promtool import PROMTOOL, promtool
from .test_metrics_endpoint import sample

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_share_one_metrics_view(tmp_path):
    port = free_port()
    directory = tmp_path / "web-metrics"
    directory.mkdir()
    stale = directory / "counter_999999.db"
    stale.write_bytes(b"left over from a previous run")
    env = process_env(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        ALLOWED_HOSTS="127.0.0.1",
        LOG_FORMAT="json",
    )
    server = subprocess.Popen(
        [GUNICORN, "--config", "gunicorn.conf.py", "polaris.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get(f"{base}/healthz"), timeout=60, interval=0.2)
        wait_until(lambda: len(children_of(server.pid)) == 2, timeout=30, interval=0.1)
        assert not stale.exists()  # emptied by the master before any worker started

        for _ in range(40):
            assert get(f"{base}/healthz") is not None
        text = get(f"{base}/metrics")
        # Every request so far, whichever worker served it: 1 readiness poll at least, 40, and this scrape.
        counted = sample(text, "django_http_requests_before_middlewares_total")
        assert counted is not None
        assert counted >= 42

        # One worker dies; gunicorn replaces it and marks it dead. Its counts stay in the total.
        victim = min(children_of(server.pid))
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: victim not in children_of(server.pid) and len(children_of(server.pid)) == 2, 30, 0.1
        )
        after = sample(
            wait_until(lambda: get(f"{base}/metrics"), timeout=30, interval=0.2),
            "django_http_requests_before_middlewares_total",
        )
        assert after is not None
        assert after >= counted + 1

        if PROMTOOL is not None:
            result = promtool("check", "metrics", stdin=get(f"{base}/metrics").encode())
            assert result.returncode == 0, (result.stdout + result.stderr).decode()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_workers_freeze_the_loaded_app_out_of_the_garbage_collector():
    import gc
    import runpy

    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert gc.get_freeze_count() == 0
    try:
        config["post_worker_init"](worker=None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
