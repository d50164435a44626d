"""Processes the benchmarks start (Celery workers and beat, gunicorn) and stop, each in its own session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def process_start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``argv`` from the project root in a new session (so a stop reaches its children), output to ``log``
    (appended: a restarted process keeps the earlier lines)."""
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def celery_start(kind: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``celery -A polaris <kind>`` (``worker`` or ``beat``) at ``BENCH_CELERY_LOG_LEVEL`` (warning)."""
    celery = str(Path(sys.executable).parent / "celery")
    level = os.environ.get("BENCH_CELERY_LOG_LEVEL", "warning")
    return process_start([celery, "-A", "polaris", kind, "-l", level, *args], env, log)


def process_stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to the process's session; SIGKILL it if it has not ended within 20 s."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
