"""Polaris beside a plain DRF peer over HTTP, and a list page at 10,000 and at 1,000,000 tasks.

1. The peer (``bench/httppeer``, settings ``bench/http_peer_settings.py``): a project as the DRF, simplejwt
   and django-fsm docs write one — a ModelViewSet with a ModelSerializer (``fields = "__all__"``), JWT auth,
   DRF's page-number pagination, and a ``transition`` action that locks the row (``select_for_update``),
   runs the django-fsm method and writes an audit row in the same transaction. Its own scratch database
   on the same PostgreSQL, its own model with the index its list needs.
2. Polaris as it ships: the same gunicorn.conf.py (2 sync workers), DEBUG off, JWT, its envelope, SLA
   block, timers field, idempotency wrapper, throttle check, metrics and request log.
3. Three scenarios, closed loop, 16 ``http.client`` connections, requests/s: a transition
   (new → in_progress), a task read, a 20-task list page (agency scope, default order). The arms
   alternate in rounds (the order swaps every round); each arm's best round is the headline and every
   round's ratio is printed. Target: Polaris/peer ≥ 1.5 on each.
4. A list page's latency (one connection, sequential, p50) with 10,000 tasks in the agency, then with
   1,000,000 (``--quick``: 100,000), the rows added by one INSERT … SELECT and ANALYZEd. Target <= 1.2x.

    DATABASE_URL=... REDIS_URL=... python bench/http_peer_bench.py [--quick] [--rounds R] [--skip-scale]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

POLARIS_DATABASE = "polaris_http_bench"
PEER_DATABASE = "polaris_http_peer_bench"
CONNECTIONS = 16
WORKERS = 2
PASSWORD = "bench-Polaris-123"  # a scratch database's throwaway users
LIST_TASKS = 2000  # tasks in the agency the list scenario pages through


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the peer's side (a child process with the peer's settings) ------------------------------------------


def peer_setup(transitions: int) -> None:
    """Migrate the peer's database, create its agency, users and tasks; print the task ids as JSON."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from bench.httppeer.models import Agency, PeerUser, Task

    agency = Agency.objects.create(name="Peer Bench")
    agent = PeerUser.objects.create_user(
        username="bench-agent", password=PASSWORD, role="agency", agency=agency
    )
    client = PeerUser.objects.create_user(username="bench-client", password="x", role="client", agency=agency)

    def tasks(count: int) -> list[Task]:
        return Task.objects.bulk_create(
            Task(title=f"Bench {i}", task_type="intake", client=client, agency=agency, assignee=agent)
            for i in range(count)
        )

    movable = tasks(transitions)
    listed = tasks(max(200, LIST_TASKS - transitions))
    print(
        json.dumps({"transition": [str(t.pk) for t in movable], "read": [str(t.pk) for t in listed[-200:]]})
    )


def _peer_prepare(base_url: str, transitions: int) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(base_url, PEER_DATABASE),
        "DJANGO_SETTINGS_MODULE": "bench.http_peer_settings",
    }
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), "--peer-setup", str(transitions)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- Polaris's side (this process) ------------------------------------------------------------------------


def _polaris_prepare(transitions: int) -> dict:
    from polaris.accounts.services import agency_get_or_create, user_upsert
    from workflow.services.tasks import task_create

    agency = agency_get_or_create(name="HTTP Bench")
    agent, _ = user_upsert(username="bench-agent", password=PASSWORD, role="agency", agency=agency)
    client, _ = user_upsert(username="bench-client", password="x", role="client", agency=agency)
    ids = [
        task_create(
            actor=agent, title=f"Bench {i}", task_type="intake", client=client, agency=agency, assignee=agent
        ).pk
        for i in range(transitions + max(200, LIST_TASKS - transitions))
    ]
    return {"transition": [str(i) for i in ids[:transitions]], "read": [str(i) for i in ids[-200:]]}


def _start_gunicorn(env: dict[str, str], app: str, port: int, log_path: Path) -> subprocess.Popen:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    return subprocess.Popen(
        [gunicorn, "--config", "gunicorn.conf.py", app],
        cwd=ROOT,
        env={
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(WORKERS),
            "GUNICORN_THREADS": "1",
        },
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _token(port: int, path: str, server: subprocess.Popen, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    body = json.dumps({"username": "bench-agent", "password": PASSWORD})
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited during start-up (port {port})")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            connection.close()
            if response.status == 200:
                return json.loads(payload)["access"]
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"gunicorn on port {port} did not answer in time")


# --- the load ---------------------------------------------------------------------------------------------


class Arm:
    def __init__(self, name: str, port: int, token: str, tasks: str, ids: dict):
        self.name, self.port, self.tasks, self.ids = name, port, tasks, ids
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.moved = 0  # transition ids used so far

    def requests(self, scenario: str, count: int) -> list[tuple[str, str, bytes | None]]:
        if scenario == "transition":
            ids = self.ids["transition"][self.moved : self.moved + count]
            self.moved += count
            body = json.dumps({"target_state": "in_progress"}).encode()
            slash = "/" if self.name == "peer" else ""
            return [("POST", f"{self.tasks}/{i}/transition{slash}", body) for i in ids]
        if scenario == "read":
            slash = "/" if self.name == "peer" else ""
            reads = self.ids["read"]
            return [("GET", f"{self.tasks}/{reads[n % len(reads)]}{slash}", None) for n in range(count)]
        page = f"{self.tasks}/?page_size=20" if self.name == "peer" else f"{self.tasks}?page_size=20"
        return [("GET", page, None)] * count


def _check(scenario: str, arm: Arm, status: int, payload: bytes) -> bool:
    if status != 200:
        return False
    body = json.loads(payload)
    if scenario == "transition":
        task = body["task"] if arm.name == "polaris" else body
        return task["state"] == "in_progress"
    if scenario == "list":
        return len(body["results"]) == 20
    return "id" in body


def _closed_loop(arm: Arm, scenario: str, requests: list) -> tuple[float, int, list[float]]:
    """(requests/s, errors, latencies) for ``requests`` sent over CONNECTIONS always-busy connections."""
    shares = [requests[i::CONNECTIONS] for i in range(CONNECTIONS)]
    errors = [0] * CONNECTIONS
    latencies: list[list[float]] = [[] for _ in range(CONNECTIONS)]
    start_line = threading.Barrier(CONNECTIONS + 1)

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", arm.port, timeout=30)
        start_line.wait()
        for method, path, body in shares[index]:
            began = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=arm.headers)
                response = connection.getresponse()
                ok = _check(scenario, arm, response.status, response.read())
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                connection.close()
                ok = False
            latencies[index].append(time.perf_counter() - began)
            errors[index] += not ok
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return len(requests) / wall, sum(errors), [x for part in latencies for x in part]


def _sequential_p50(port: int, headers: dict, path: str, count: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    for _ in range(count):
        began = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        times.append(time.perf_counter() - began)
        if response.status != 200 or len(json.loads(payload)["results"]) != 20:
            raise RuntimeError(f"list page failed: {response.status} {payload[:200]!r}")
    connection.close()
    return statistics.median(times)


# --- the list at scale ------------------------------------------------------------------------------------


def _scale_agent(port: int, server: subprocess.Popen) -> tuple[str, str]:
    from polaris.accounts.services import agency_get_or_create, user_upsert

    agency = agency_get_or_create(name="Scale Bench")
    user_upsert(username="scale-agent", password=PASSWORD, role="agency", agency=agency)
    user_upsert(username="scale-client", password="x", role="client", agency=agency)
    body = json.dumps({"username": "scale-agent", "password": PASSWORD})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/api/auth/token/", body=body, headers={"Content-Type": "application/json"})
    token = json.loads(connection.getresponse().read())["access"]
    connection.close()
    return str(agency.pk), token


def _scale_add(agency_id: str, count: int) -> None:
    """``count`` more tasks in the agency, as one statement (the bench's own data; not a code path)."""
    from django.db import connection

    from polaris.accounts.models import User

    client = User.objects.get(username="scale-client")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO workflow_task (id, title, description, task_type, service_area, priority, client_id,"
            " agency_id, blocked_reason, state, version, created_at, updated_at)"
            " SELECT gen_random_uuid(), 'Scale ' || g, '', 'intake', 'housing', 'normal', %s, %s, '', 'new',"
            " 1, now() - make_interval(secs => g), now() FROM generate_series(1, %s) AS g",
            [client.pk, agency_id, count],
        )
        cursor.execute("ANALYZE workflow_task")


def scale(port: int, server: subprocess.Popen, large: int, samples: int) -> dict:
    agency_id, token = _scale_agent(port, server)
    headers = {"Authorization": f"Bearer {token}"}
    path = "/api/workflow/tasks?page_size=20"
    _scale_add(agency_id, 10_000)
    _sequential_p50(port, headers, path, 30)  # warm
    small = _sequential_p50(port, headers, path, samples)
    print(f"  list page, 10,000 tasks in the agency: p50 {small * 1000:.2f} ms", flush=True)
    started = time.perf_counter()
    _scale_add(agency_id, large - 10_000)
    print(f"  (added {large - 10_000:,} tasks in {time.perf_counter() - started:.0f} s)", flush=True)
    _sequential_p50(port, headers, path, 30)
    big = _sequential_p50(port, headers, path, samples)
    second = _sequential_p50(port, headers, path + "&page=2", samples)
    print(
        f"  list page, {large:,} tasks in the agency: p50 {big * 1000:.2f} ms "
        f"(page 2: {second * 1000:.2f} ms)"
    )
    ratio = big / small
    verdict = "met" if ratio <= 1.2 else "NOT met"
    print(f"  {large:,} / 10,000: {ratio:.2f}x (target <= 1.2x: {verdict})")
    return {"small_ms": small * 1000, "large_ms": big * 1000, "ratio": ratio}


# --- main -------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (400 requests per arm and round)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of both arms")
    parser.add_argument("--requests", type=int, default=None, help="requests per arm, scenario and round")
    parser.add_argument("--skip-scale", action="store_true", help="skip the 10k-vs-1M list page")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch databases")
    parser.add_argument("--peer-setup", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peer_setup is not None:
        peer_setup(args.peer_setup)
        return 0

    per_round = args.requests or (400 if args.quick else 2000)
    warmup = 100
    transitions = warmup + per_round * args.rounds
    large = 100_000 if args.quick else 1_000_000
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        print("DATABASE_URL is required (make bench sets it up)", file=sys.stderr)
        return 2
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["DJANGO_SETTINGS_MODULE"] = "polaris.settings"
    recreate_database(base_url, POLARIS_DATABASE)
    recreate_database(base_url, PEER_DATABASE)
    os.environ["DATABASE_URL"] = database_url(base_url, POLARIS_DATABASE)
    servers: list[subprocess.Popen] = []
    try:
        django_setup_and_migrate()
        logging.getLogger("httpx").setLevel(logging.WARNING)
        print(f"preparing {transitions} movable tasks and a {LIST_TASKS}-task agency per arm", flush=True)
        polaris_ids = _polaris_prepare(transitions)
        peer_ids = _peer_prepare(base_url, transitions)
        env = {
            **os.environ,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "API_THROTTLE_USER": "1000000/minute",  # the check still runs on every request
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="polaris-http-bench-metrics-"),
        }
        peer_env = {
            **os.environ,
            "DATABASE_URL": database_url(base_url, PEER_DATABASE),
            "DJANGO_SETTINGS_MODULE": "bench.http_peer_settings",
        }
        logs = Path(tempfile.gettempdir())
        polaris_port, peer_port = _free_port(), _free_port()
        servers.append(
            _start_gunicorn(env, "polaris.wsgi:application", polaris_port, logs / "polaris-http-bench.log")
        )
        servers.append(
            _start_gunicorn(
                peer_env, "bench.httppeer.wsgi:application", peer_port, logs / "polaris-http-peer.log"
            )
        )
        polaris = Arm(
            "polaris",
            polaris_port,
            _token(polaris_port, "/api/auth/token/", servers[0]),
            "/api/workflow/tasks",
            polaris_ids,
        )
        peer = Arm("peer", peer_port, _token(peer_port, "/api/token/", servers[1]), "/api/tasks", peer_ids)

        scenarios = ("transition", "read", "list")
        for arm in (polaris, peer):  # warm: imports, connections, statement caches
            for scenario in scenarios:
                _closed_loop(
                    arm, scenario, arm.requests(scenario, warmup if scenario == "transition" else 200)
                )

        results: dict[str, dict[str, list[tuple[float, int, float]]]] = {
            s: {"polaris": [], "peer": []} for s in scenarios
        }
        for index in range(args.rounds):
            order = (polaris, peer) if index % 2 == 0 else (peer, polaris)
            for scenario in scenarios:
                for arm in order:
                    rate, errors, latencies = _closed_loop(arm, scenario, arm.requests(scenario, per_round))
                    results[scenario][arm.name].append((rate, errors, statistics.median(latencies) * 1000))

        print(
            f"\nPolaris beside a plain DRF peer over HTTP: gunicorn {WORKERS} sync workers each, "
            f"{CONNECTIONS} connections, {per_round} requests per arm and round, "
            f"{args.rounds} alternating rounds"
        )
        failed = False
        for scenario in scenarios:
            ours, theirs = results[scenario]["polaris"], results[scenario]["peer"]
            best_ours, best_theirs = max(r[0] for r in ours), max(r[0] for r in theirs)
            errors = sum(r[1] for r in ours) + sum(r[1] for r in theirs)
            ratio = best_ours / best_theirs
            rounds = ", ".join(f"{o[0] / t[0]:.2f}" for o, t in zip(ours, theirs, strict=True))
            verdict = "met" if ratio >= 1.5 and not errors else "NOT met"
            print(
                f"  {scenario:<10} Polaris {best_ours:7.0f}/s (p50 {min(r[2] for r in ours):5.1f} ms)   "
                f"peer {best_theirs:7.0f}/s (p50 {min(r[2] for r in theirs):5.1f} ms)   "
                f"Polaris/peer {ratio:.2f} (rounds {rounds}; target >= 1.5: {verdict}); errors {errors}"
            )
            failed = failed or errors > 0
        servers[1].terminate()  # the scale part runs Polaris alone

        if not args.skip_scale:
            print(
                "\nA list page's latency as the agency grows (Polaris, one connection, sequential):",
                flush=True,
            )
            scale(polaris_port, servers[0], large, 100 if args.quick else 300)
        return 1 if failed else 0
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(base_url, POLARIS_DATABASE)
            drop_database(base_url, PEER_DATABASE)


if __name__ == "__main__":
    sys.exit(main())
