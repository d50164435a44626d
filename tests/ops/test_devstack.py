"""``make run`` / ``make manage`` as a newcomer types them, in a real terminal (a pty): the running stack is
reused by ``make manage`` (same PostgreSQL and Redis), even one typed while ``make run`` is still starting;
a second ``make run`` touches nothing, and Ctrl-C stops everything with exit 0 (no "Error 130", no
"Interrupt").

The test points the stack at the test database and Redis (so no embedded servers start) and at a
throwaway data directory; ``-o .venv/.installed`` keeps make from reinstalling the shared virtualenv.
"""

import fcntl
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import termios
import time
from pathlib import Path

import psutil
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
    manage_env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    manage_env["DJANGO_SUPERUSER_PASSWORD"] = "pw-Polaris-123"
    manage = None
    try:
        # `make manage` typed the moment `make run` holds its lock, while it migrates and seeds: it waits
        # for the stack to be ready and uses it (no PostgreSQL or Redis of its own).
        deadline = time.monotonic() + 60
        while not (tmp_path / "stack.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        manage = subprocess.Popen(
            [*MAKE, "manage", "ARGS=createsuperuser --no-input --username devstack-root --email r@x.test"],
            cwd=ROOT,
            env=manage_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        read_until(master, "Ctrl-C stops everything", output, timeout=90)

        # A second `make run` says one is running, and migrates, seeds and starts nothing.
        second = subprocess.run([*MAKE, "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert "already running" in second.stdout
        assert "migrat" not in second.stdout.lower()
        assert "seed" not in second.stdout.lower()

        # That `make manage`, without any URL in its environment, found the running stack's servers.
        manage_output, _ = manage.communicate(timeout=120)
        assert manage.returncode == 0, manage_output
        assert "using the running stack" in manage_output
        assert "embedded" not in manage_output  # no second PostgreSQL or Redis
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
        if manage is not None and manage.poll() is None:
            manage.kill()
            manage.wait(timeout=30)
        if run.poll() is None:
            os.killpg(run.pid, 15)
            run.wait(timeout=30)
        os.close(master)


# What a newcomer's shell does not have: the servers' addresses (and a metrics directory of the tests').
SERVER_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR")


def hold_run_lock(data_dir: Path) -> int:
    """Hold ``run.lock`` as a ``make run`` does (until the descriptor is closed)."""
    fd = os.open(data_dir / "run.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def record_stack(data_dir: Path, **fields: str) -> None:
    """``stack.json`` as ``make run`` writes it: first ``starting``, then ``ready`` with its servers."""
    scratch = data_dir / "stack.tmp"
    scratch.write_text(json.dumps({"pid": str(os.getpid()), "port": "8000", **fields}))
    os.replace(scratch, data_dir / "stack.json")


def test_manage_waits_for_a_starting_run_instead_of_starting_servers_of_its_own(tmp_path: Path):
    # The window the race was in: `make run` holds its lock but its PostgreSQL is not up yet. A `make manage`
    # then started a second PostgreSQL on the same data directory and a second Redis.
    servers = process_env()
    env = {k: v for k, v in servers.items() if k not in SERVER_VARIABLES}
    env |= {"POLARIS_DATA_DIR": str(tmp_path), "DJANGO_SUPERUSER_PASSWORD": "pw-Polaris-123"}
    lock = hold_run_lock(tmp_path)
    manage = None
    try:
        record_stack(tmp_path, state="starting")
        manage = subprocess.Popen(
            [*MAKE, "manage", "ARGS=createsuperuser --no-input --username racer --email r@x.test"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert manage.stdout is not None
        seen: list[str] = []
        read_until(manage.stdout.fileno(), "is starting; waiting for it", seen, timeout=60)
        time.sleep(1)  # it keeps waiting, and starts nothing meanwhile
        assert manage.poll() is None
        assert "embedded" not in "".join(seen)
        assert not (tmp_path / "postgres").exists()

        record_stack(
            tmp_path, state="ready", DATABASE_URL=servers["DATABASE_URL"], REDIS_URL=servers["REDIS_URL"]
        )
        rest, _ = manage.communicate(timeout=120)
        text = "".join(seen) + rest.decode(errors="replace")
        assert manage.returncode == 0, text
        assert "using the running stack" in text
        assert "embedded" not in text
        assert User.objects.get(username="racer").role == User.Role.ADMIN
    finally:
        if manage is not None and manage.poll() is None:
            manage.kill()
            manage.wait(timeout=30)
        os.close(lock)


def test_manage_gives_up_on_a_run_that_never_gets_ready_without_starting_its_own(tmp_path: Path):
    env = {k: v for k, v in process_env().items() if k not in SERVER_VARIABLES}
    env |= {"POLARIS_DATA_DIR": str(tmp_path), "POLARIS_STACK_WAIT_SECONDS": "1"}
    lock = hold_run_lock(tmp_path)
    try:
        record_stack(tmp_path, state="starting")
        manage = subprocess.run(
            [*MAKE, "manage", "ARGS=check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        os.close(lock)
    assert manage.returncode != 0
    assert "did not become ready" in manage.stdout + manage.stderr
    assert "embedded" not in manage.stdout
    assert not (tmp_path / "postgres").exists()


# --- The dev stack heals (#28): what a killed `make run` left is found and stopped

DEVSTACK = [sys.executable, "scripts/devstack.py"]


def embedded_env(data_dir: Path, port: int) -> dict[str, str]:
    """A newcomer's environment: no server addresses, so the run starts its own PostgreSQL and Redis."""
    env = {k: v for k, v in process_env().items() if k not in SERVER_VARIABLES}
    return env | {"POLARIS_DATA_DIR": str(data_dir), "PORT": str(port)}


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def postmaster(data_dir: Path) -> psutil.Process | None:
    try:
        return psutil.Process(int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0]))
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


def start_run(env: dict[str, str]) -> tuple[subprocess.Popen, list[str]]:
    run = subprocess.Popen(
        [*DEVSTACK, "run"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert run.stdout is not None
    output: list[str] = []
    read_until(run.stdout.fileno(), "Ctrl-C stops everything", output, timeout=60)
    return run, output


def test_stack_recovers_after_its_run_process_is_sigkilled(tmp_path: Path):
    started = time.monotonic()
    first_port, second_port = free_port(), free_port()
    runs: list[subprocess.Popen] = []
    try:
        run, _ = start_run(embedded_env(tmp_path, first_port))
        runs.append(run)
        # The run records what it started (rescanned every 0.5 s) and its PostgreSQL.
        deadline = time.monotonic() + 10
        record: dict = {}
        while time.monotonic() < deadline:
            record = json.loads((tmp_path / "stack.json").read_text())
            names = " ".join(entry["name"] for entry in record.get("processes", []))
            if "postgres" in record and "redis-server" in names and "worker" in names and "beat" in names:
                break
            time.sleep(0.2)
        assert "postgres" in record, record
        assert "redis-server" in names, record
        old = psutil.Process(run.pid).children(recursive=True)
        old_postgres = postmaster(tmp_path)
        assert old_postgres is not None

        run.send_signal(signal.SIGKILL)  # the run process alone, as the OOM killer does
        run.wait(timeout=10)
        time.sleep(0.5)
        orphans = [process for process in old if alive(process)]
        assert orphans, "nothing outlived the run: the scenario did not reproduce"

        stop = subprocess.run(
            [*DEVSTACK, "stop"],
            cwd=ROOT,
            env=embedded_env(tmp_path, first_port),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "embedded PostgreSQL" in stop.stdout
        assert [process for process in old if alive(process)] == []
        assert not alive(old_postgres)
        assert not (tmp_path / "stack.json").exists()

        # A new run starts cleanly, and prints its real port; a second one names its pid and port.
        run, output = start_run(embedded_env(tmp_path, second_port))
        runs.append(run)
        assert "died" not in "".join(output)
        assert f"http://127.0.0.1:{second_port}/api/workflow/tasks" in "".join(output)
        again = subprocess.run(
            [*DEVSTACK, "run"],
            cwd=ROOT,
            env=embedded_env(tmp_path, free_port()),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 1
        assert f"already running (pid {run.pid}, http://127.0.0.1:{second_port}/)" in again.stdout
        new_postgres = postmaster(tmp_path)
        assert new_postgres is not None

        # Ctrl-C (SIGINT to its group, as the terminal sends it) stops the embedded PostgreSQL again.
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=40) == 0
        new_postgres.wait(timeout=20)
        assert not alive(new_postgres)
    finally:
        for run in runs:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait(timeout=10)
        subprocess.run([*DEVSTACK, "stop"], cwd=ROOT, env=embedded_env(tmp_path, first_port), timeout=60)
    # About 50 s on an idle 2-core machine (two starts of the embedded stack); the steps' own timeouts
    # bound it on a loaded one.
    print(f"recovery scenario took {time.monotonic() - started:.0f} s")


def test_manage_does_not_wait_for_a_dead_run_and_stop_frees_its_lock(tmp_path: Path):
    # What a killed run leaves: a forked helper holding run.lock, and a record whose pid is gone.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)",
            str(tmp_path / "run.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        dead = subprocess.Popen(["true"])
        dead.wait()
        record_stack(tmp_path, state="ready")
        record = json.loads((tmp_path / "stack.json").read_text()) | {"pid": str(dead.pid)}
        (tmp_path / "stack.json").write_text(json.dumps(record))
        env = {k: v for k, v in process_env().items() if k not in SERVER_VARIABLES}
        env |= {"POLARIS_DATA_DIR": str(tmp_path)}  # the wait window stays at its 300 s default

        began = time.monotonic()
        manage = subprocess.run(
            [*DEVSTACK, "manage", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert time.monotonic() - began < 20
        assert manage.returncode != 0
        assert f"`make run` (pid {dead.pid}) died" in manage.stdout + manage.stderr
        assert "make stop" in manage.stdout + manage.stderr
        assert "embedded" not in manage.stdout

        stop = subprocess.run(
            [*DEVSTACK, "stop"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert holder.wait(timeout=10) is not None
        fd = hold_run_lock(tmp_path)  # free again
        os.close(fd)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)
