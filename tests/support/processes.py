"""Real Celery worker and beat processes for integration tests, against the test database and Redis.

Use inside tests marked ``@pytest.mark.django_db(transaction=True)`` so the workers see committed rows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
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


def _wait_for_line(process: subprocess.Popen, needle: str, timeout: float, log: list[str]) -> None:
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    deadline = time.monotonic() + timeout
    buffer = ""
    while time.monotonic() < deadline:
        chunk = process.stdout.read()
        if chunk:
            buffer += chunk
            log.append(chunk)
            if needle in buffer:
                return
        elif process.poll() is not None:
            raise RuntimeError(f"process exited early ({process.returncode}):\n{''.join(log)}")
        else:
            time.sleep(0.05)
    raise TimeoutError(f"no {needle!r} within {timeout}s:\n{''.join(log)}")


@contextlib.contextmanager
def celery_process(
    kind: str = "worker", *args: str, env: dict[str, str] | None = None, ready_timeout: float = 60
) -> Iterator[subprocess.Popen]:
    """Start ``celery -A polaris worker|beat`` and wait until it is ready; stop it on exit."""
    command = [CELERY, "-A", "polaris", kind, "-l", "info", *args]
    needle = "ready." if kind == "worker" else "beat: Starting"
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env or process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    log: list[str] = []
    try:
        _wait_for_line(process, needle, ready_timeout, log)
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
