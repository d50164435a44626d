"""A Celery process whose output is read in a thread (robust to partial reads), for the ops tests.

``tests.support.processes.celery_process`` reads a text pipe in non-blocking mode, which raises
``TypeError`` when a read finds no data yet; this helper sidesteps that and keeps the whole log for
assertions (the structured-log tests read it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.support.processes import CELERY, ROOT


@dataclass
class RunningProcess:
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)


@contextlib.contextmanager
def celery(kind: str, *args: str, env: dict[str, str], ready_timeout: float = 60) -> Iterator[RunningProcess]:
    command = [CELERY, "-A", "polaris", kind, "-l", "info", *args]
    needle = "ready." if kind == "worker" else "beat: Starting"
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = RunningProcess(process)
    assert process.stdout is not None
    reader = threading.Thread(
        target=lambda: running.lines.extend(iter(process.stdout.readline, "")), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + ready_timeout
        while needle not in running.output:
            if process.poll() is not None:
                raise RuntimeError(f"{kind} exited early ({process.returncode}):\n{running.output}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {needle!r} within {ready_timeout}s:\n{running.output}")
            time.sleep(0.05)
        yield running
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        reader.join(timeout=5)
