"""``make run`` / ``make manage`` as a newcomer types them, in a real terminal (a pty): the running stack is
reused by ``make manage`` (same PostgreSQL and Redis), a second ``make run`` touches nothing, and Ctrl-C
stops everything with exit 0 (no "Error 130", no "Interrupt").

The test points the stack at the test database and Redis (so no embedded servers start) and at a
throwaway data directory; ``-o .venv/.installed`` keeps make from reinstalling the shared virtualenv.
"""

import fcntl
import os
import pty
import select
import socket
import subprocess
import termios
import time
from pathlib import Path

import pytest

from polaris.accounts.models import User
from tests.support.processes import ROOT, process_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MAKE = ["make", "--no-print-directory", "-o", ".venv/.installed"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def take_controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def read_until(fd: int, needle: str, seen: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in "".join(seen):
            return
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen.append(os.read(fd, 65536).decode(errors="replace"))
            except OSError:  # the other side closed
                break
    assert needle in "".join(seen), "".join(seen)[-3000:]


def test_make_run_manage_second_run_and_ctrl_c(tmp_path: Path):
    env = process_env(POLARIS_DATA_DIR=str(tmp_path), PORT=str(free_port()))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    master, slave = pty.openpty()
    run = subprocess.Popen(
        [*MAKE, "run"],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,  # a session whose controlling terminal is the pty, as in a real shell
        preexec_fn=take_controlling_terminal,
    )
    os.close(slave)
    output: list[str] = []
    try:
        read_until(master, "Ctrl-C stops everything", output, timeout=90)

        # A second `make run` says one is running, and migrates, seeds and starts nothing.
        second = subprocess.run([*MAKE, "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert "already running" in second.stdout
        assert "migrat" not in second.stdout.lower()
        assert "seed" not in second.stdout.lower()

        # `make manage` without any URL in its environment finds the running stack's servers.
        manage_env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        manage_env["DJANGO_SUPERUSER_PASSWORD"] = "pw-Polaris-123"
        manage = subprocess.run(
            [*MAKE, "manage", "ARGS=createsuperuser --no-input --username devstack-root --email r@x.test"],
            cwd=ROOT,
            env=manage_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert manage.returncode == 0, manage.stdout + manage.stderr
        assert "using the running stack" in manage.stdout
        assert "embedded" not in manage.stdout  # no second PostgreSQL or Redis
        assert User.objects.get(username="devstack-root").role == User.Role.ADMIN

        # Ctrl-C, as the terminal sends it, to the foreground process group.
        os.write(master, b"\x03")
        returncode = run.wait(timeout=60)
        while True:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            output.append(chunk.decode(errors="replace"))
        text = "".join(output)
        assert returncode == 0, text[-3000:]
        assert "Error 130" not in text
        assert "Interrupt" not in text
        assert not (tmp_path / "stack.json").exists()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, 15)
            run.wait(timeout=30)
        os.close(master)
