"""Real Celery worker and beat processes for integration tests, against the test database and Redis.

Use inside tests marked ``@pytest.mark.django_db(transaction=True)`` so the workers see committed rows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).parent / "celery")


def database_url_for_tests() -> str:
    """A DATABASE_URL for the database the test run is using (pytest-django's ``test_…`` copy)."""
    params = connection.get_connection_params()
    name = connection.settings_dict["NAME"]
    user = params.get("user") or "postgres"
    password = params.get("password") or ""
    host = params.get("host") or ""
    port = params.get("port") or 5432
    auth = f"{user}:{password}@" if password else f"{user}@"
    if host.startswith("/"):
        return f"postgresql://{auth}/{name}?host={host}&port={port}"
    return f"postgresql://{auth}{host}:{port}/{name}"


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url_for_tests(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "DEBUG": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


class CeleryProcess:
    """A ``celery -A polaris worker|beat`` subprocess whose output a reader thread collects.

    A thread (rather than non-blocking reads) copes with partial lines and keeps the whole log for
    assertions and failure messages.
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

    @property
    def output(self) -> str:
        return "".join(self.lines)

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
        self._reader.join(timeout=5)

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout=timeout)


@contextlib.contextmanager
def celery_process(
    kind: str = "worker", *args: str, env: dict[str, str] | None = None, ready_timeout: float = 60
) -> Iterator[CeleryProcess]:
    """Start ``celery -A polaris worker|beat`` and wait until it is ready; stop it on exit."""
    process = CeleryProcess(kind, list(args), env or process_env())
    try:
        process.wait_for("ready." if kind == "worker" else "beat: Starting", timeout=ready_timeout)
        yield process
    finally:
        process.stop()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


GUNICORN = str(Path(sys.executable).parent / "gunicorn")


@contextlib.contextmanager
def gunicorn_process(*, port: int, env: dict[str, str], workers: int = 2, timeout: float = 60) -> Iterator:
    """The real web server (``gunicorn.conf.py``) on 127.0.0.1:``port``; yields its ``Popen`` once up."""
    env = {"GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers), **env}
    with _server_process(["gunicorn.conf.py", "polaris.wsgi:application"], port, env, timeout) as server:
        yield server


@contextlib.contextmanager
def async_tier_process(*, port: int, env: dict[str, str], workers: int = 1, timeout: float = 60) -> Iterator:
    """The async tier (``gunicorn.async.conf.py``: uvicorn workers, ``polaris.asgi``) on ``port``."""
    env = {"ASYNC_BIND": f"127.0.0.1:{port}", "ASYNC_CONCURRENCY": str(workers), **env}
    with _server_process(
        ["gunicorn.async.conf.py", "polaris.asgi:application"], port, env, timeout
    ) as server:
        yield server


@contextlib.contextmanager
def _server_process(config_and_app: list[str], port: int, env: dict[str, str], timeout: float) -> Iterator:
    import urllib.request

    env = {"ALLOWED_HOSTS": "127.0.0.1", **env}
    server = subprocess.Popen(
        [GUNICORN, "--config", *config_and_app],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_until(answers, timeout=timeout, interval=0.2)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def children_of(pid: int) -> set[int]:
    """The pids whose parent is ``pid`` (gunicorn's workers), read from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found
