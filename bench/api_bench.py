"""Task transitions through the HTTP API: capacity beside the in-process service rate, and latency under
open-loop arrivals at fractions of that capacity, in one run.

1. Service layer: ``task_transition`` (new → in_progress) called in this process, one connection, the same
   path the foundation bench times.
2. Capacity: ``POST /api/workflow/tasks/{id}/transition`` through gunicorn (the project's gunicorn.conf.py,
   2 sync workers, DEBUG off, JWT from ``/api/auth/token/``) driven closed-loop by 16 always-busy
   ``http.client`` connections; the figure is completed transitions / wall time. The arms alternate in
   rounds (``--rounds``, default 3) so both see the same machine load; each arm's best round is the
   headline. Target: HTTP >= 60 % of the service rate (issue #26; was 50 %).
3. Latency as SRE practice states it: unloaded (one request at a time, a pause between), then open-loop
   arrivals at 25 %, 50 % and 75 % of the capacity just measured. A scheduler fixes every request's send
   time in advance (a constant rate) and a pool of connections sends each at its time; latency counts from
   the *intended* send time, so a stalled server is charged for the requests it held back (no coordinated
   omission). Target: at 50 % of capacity p99 <= 3x the unloaded p50, and zero errors anywhere.

4. ``--revocation``: only the capacity arm, against two gunicorns that differ in one setting,
   ``JWT_TOKEN_VERSION_CHECK`` on and off (the per-request token-version check), alternating in rounds;
   prints both and the ratio. Target: the check costs <= 5 % of capacity.

Runs on a scratch database (``polaris_api_bench``, dropped at the end). The user throttle is raised for
the run (the default 6000/minute would cap one user at 100 requests/s); the throttle check itself still
runs on every request.

    DATABASE_URL=... REDIS_URL=... python bench/api_bench.py [--quick] [--rounds R] [--threads T] [--keep-db]
        [--revocation]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_api_bench"
CONNECTIONS = 16
WORKERS = 2
OPEN_LOOP_POOL = 48  # connections the open-loop scheduler may have in flight at once
LOAD_FRACTIONS = (0.25, 0.50, 0.75)
PASSWORD = "bench-Polaris-123"  # a scratch database's throwaway user


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make_tasks(count: int) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Tasks in state ``new`` with an assignee: ``count`` for each arm."""
    from polaris.accounts.services import agency_get_or_create, user_upsert
    from workflow.services.tasks import task_create

    agency = agency_get_or_create(name="API Bench")
    agent, _ = user_upsert(username="bench-api-agent", password=PASSWORD, role="agency", agency=agency)
    client, _ = user_upsert(username="bench-api-client", password="x", role="client", agency=agency)
    ids = [
        task_create(
            actor=agent, title=f"Bench {i}", task_type="intake", client=client, agency=agency, assignee=agent
        ).pk
        for i in range(2 * count)
    ]
    return ids[:count], ids[count:]


def _more_tasks(count: int) -> list[uuid.UUID]:
    from polaris.accounts.models import Agency, User
    from workflow.services.tasks import task_create

    agent = User.objects.get(username="bench-api-agent")
    client = User.objects.get(username="bench-api-client")
    agency = Agency.objects.get(pk=agent.agency_id)
    return [
        task_create(
            actor=agent, title=f"Open {i}", task_type="intake", client=client, agency=agency, assignee=agent
        ).pk
        for i in range(count)
    ]


def _service_seconds(task_ids: list[uuid.UUID]) -> float:
    from polaris.accounts.models import User
    from workflow.services.tasks import task_transition

    actor = User.objects.get(username="bench-api-agent")
    started = time.perf_counter()
    for task_id in task_ids:
        task_transition(task_id=task_id, target_state="in_progress", actor=actor)
    return time.perf_counter() - started


def _start_gunicorn(env: dict[str, str], port: int, log_path: Path, threads: int) -> subprocess.Popen:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    log = log_path.open("wb")
    return subprocess.Popen(
        [gunicorn, "--config", "gunicorn.conf.py", "polaris.wsgi:application"],
        cwd=ROOT,
        env={
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": str(WORKERS),
            "GUNICORN_THREADS": str(threads),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _obtain_token(base: str, server: subprocess.Popen, timeout: float = 60.0) -> str:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited during start-up")
        try:
            response = httpx.post(
                f"{base}/api/auth/token/",
                json={"username": "bench-api-agent", "password": PASSWORD},
                timeout=5,
            )
            if response.status_code == 200:
                return response.json()["access"]
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer in time")


def _http_run(base: str, token: str, task_ids: list[uuid.UUID]) -> tuple[float, list[float], int, float]:
    """(wall seconds, per-request latencies in seconds, errors, client CPU seconds) for moving every task
    over HTTP.

    The load client is the standard library's ``http.client``: the generator shares the 2 cores with the
    server, so it should take as little of them as a Python client can. Its CPU time is returned too.
    """
    address = urlsplit(base)
    shares = [task_ids[i::CONNECTIONS] for i in range(CONNECTIONS)]
    latencies: list[list[float]] = [[] for _ in range(CONNECTIONS)]
    errors = [0] * CONNECTIONS
    start_line = threading.Barrier(CONNECTIONS + 1)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"target_state": "in_progress"}).encode()

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        start_line.wait()
        for task_id in shares[index]:
            began = time.perf_counter()
            try:
                connection.request(
                    "POST", f"/api/workflow/tasks/{task_id}/transition", body=body, headers=headers
                )
                response = connection.getresponse()
                payload = response.read()
                ok = response.status == 200 and json.loads(payload)["task"]["state"] == "in_progress"
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
    started, cpu_started = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return wall, [x for part in latencies for x in part], sum(errors), cpu


def _transition_once(connection: http.client.HTTPConnection, task_id, headers: dict, body: bytes) -> bool:
    try:
        connection.request("POST", f"/api/workflow/tasks/{task_id}/transition", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return response.status == 200 and json.loads(payload)["task"]["state"] == "in_progress"
    except (OSError, http.client.HTTPException, ValueError, KeyError):
        connection.close()  # http.client reconnects on the next request
        return False


def _unloaded(
    base: str, token: str, task_ids: list[uuid.UUID], pause: float = 0.02
) -> tuple[list[float], int]:
    """One request at a time on one warm connection, ``pause`` seconds of idle between them."""
    address = urlsplit(base)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"target_state": "in_progress"}).encode()
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    latencies, errors = [], 0
    for task_id in task_ids:
        began = time.perf_counter()
        errors += not _transition_once(connection, task_id, headers, body)
        latencies.append(time.perf_counter() - began)
        time.sleep(pause)
    connection.close()
    return latencies, errors


def _open_loop(
    base: str, token: str, task_ids: list[uuid.UUID], rate: float
) -> tuple[list[float], int, float]:
    """Send one request every ``1/rate`` s on a fixed schedule; (latencies from the intended send times,
    errors, the achieved rate).

    Request ``i`` is due at ``start + i / rate`` whatever happened to the earlier ones. A pool of threads
    (each with its own keep-alive connection) takes the due requests in order; when every thread is busy
    the next request waits, and that wait is part of its latency.
    """
    address = urlsplit(base)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"target_state": "in_progress"}).encode()
    count = len(task_ids)
    latencies = [0.0] * count
    errors = [0] * OPEN_LOOP_POOL
    tickets = itertools.count()  # next() on it is atomic under the GIL: each index goes to one thread
    start = time.perf_counter() + 0.5
    finished = [start] * OPEN_LOOP_POOL

    def sender(slot: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        while (index := next(tickets)) < count:
            due = start + index / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            ok = _transition_once(connection, task_ids[index], headers, body)
            finished[slot] = time.perf_counter()
            latencies[index] = finished[slot] - due
            errors[slot] += not ok
        connection.close()

    threads = [threading.Thread(target=sender, args=(slot,)) for slot in range(OPEN_LOOP_POOL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, sum(errors), count / (max(finished) - start)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _stop(server: subprocess.Popen | None) -> None:
    if server is None:
        return
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def revocation_main(args: argparse.Namespace, count: int, warmup: int) -> int:
    """The capacity arm with the per-request token-version check on and off, alternating in one run."""
    base_url = os.environ["DATABASE_URL"]
    recreate_database(base_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(base_url, BENCH_DATABASE)
    servers: dict[str, subprocess.Popen] = {}
    try:
        django_setup_and_migrate()
        logging.getLogger("httpx").setLevel(logging.WARNING)
        from django.db import connection

        on_ids, off_ids = _make_tasks(count + warmup)
        connection.close()
        bases, tokens = {}, {}
        for arm, check in (("on", "true"), ("off", "false")):
            port = _free_port()
            env = {
                **os.environ,
                "DEBUG": "false",
                "ALLOWED_HOSTS": "127.0.0.1",
                "SECURE_SSL_REDIRECT": "false",
                "API_THROTTLE_USER": "1000000/minute",
                "JWT_TOKEN_VERSION_CHECK": check,
                "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix=f"polaris-api-bench-{arm}-"),
            }
            log_path = Path(tempfile.gettempdir()) / f"polaris-api-bench-gunicorn-{arm}.log"
            servers[arm] = _start_gunicorn(env, port, log_path, args.threads)
            bases[arm] = f"http://127.0.0.1:{port}"
            tokens[arm] = _obtain_token(bases[arm], servers[arm])
        ids = {"on": on_ids, "off": off_ids}
        for arm in ids:  # warm each server (imports, connections, statement caches)
            _http_run(bases[arm], tokens[arm], ids[arm][:warmup])
            ids[arm] = ids[arm][warmup:]
        per_round = count // args.rounds
        rates: dict[str, list[float]] = {"on": [], "off": []}
        errors = 0
        for index in range(args.rounds):
            chunk = slice(index * per_round, (index + 1) * per_round)
            order = ("on", "off") if index % 2 == 0 else ("off", "on")
            for arm in order:
                seconds, _, errs, _ = _http_run(bases[arm], tokens[arm], ids[arm][chunk])
                rates[arm].append(per_round / seconds)
                errors += errs
    finally:
        for server in servers.values():
            _stop(server)
        if not args.keep_db:
            drop_database(base_url, BENCH_DATABASE)

    print(
        f"== API: the per-request token-version check, capacity with it on and off, {per_round} transitions "
        f"per arm per round, {args.rounds} alternating rounds ({WORKERS} workers x {args.threads} threads, "
        f"{CONNECTIONS} closed-loop connections) =="
    )
    for index in range(args.rounds):
        on, off = rates["on"][index], rates["off"][index]
        print(f"round {index + 1}: check on {on:6.0f}/s   check off {off:6.0f}/s   on/off {on / off:5.3f}")
    best_on, best_off = max(rates["on"]), max(rates["off"])
    median = sorted(on / off for on, off in zip(rates["on"], rates["off"], strict=True))[args.rounds // 2]
    ratio = best_on / best_off
    print(f"check on,  best round : {best_on:6.0f} transitions/s")
    print(f"check off, best round : {best_off:6.0f} transitions/s")
    print(
        f"ratio on/off (best rounds) : {ratio:5.3f}   median per-round ratio {median:5.3f}   (target >= 0.95)"
    )
    print(f"HTTP errors : {errors}   (target 0)")
    print(f"targets     : {'met' if ratio >= 0.95 and errors == 0 else 'NOT met'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small run (600 transitions per arm, 5 s levels)"
    )
    parser.add_argument("--transitions", type=int, default=None, help="transitions per arm")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--revocation",
        action="store_true",
        help="only the capacity arm, token-version check on vs off (JWT_TOKEN_VERSION_CHECK)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of both arms")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per open-loop level")
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("GUNICORN_THREADS") or 1),
        help="gunicorn threads per worker (default: GUNICORN_THREADS or 1, as gunicorn.conf.py)",
    )
    args = parser.parse_args(argv)
    count = args.transitions or (600 if args.quick else 3000)
    level_seconds = args.seconds or (5.0 if args.quick else 15.0)
    unloaded_count = 100 if args.quick else 300
    warmup = 100

    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        print("DATABASE_URL is required (make bench sets it up)", file=sys.stderr)
        return 2
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("JWT_SIGNING_KEY", secrets.token_urlsafe(50))
    if args.revocation:
        return revocation_main(args, count, warmup)
    recreate_database(base_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(base_url, BENCH_DATABASE)
    server = None
    levels = []
    try:
        django_setup_and_migrate()
        # A log line per request would cost the load client CPU the server then cannot use.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        from django.db import connection

        service_ids, http_ids = _make_tasks(count + warmup)
        unloaded_ids = _more_tasks(unloaded_count)
        port = _free_port()
        env = {
            **os.environ,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "API_THROTTLE_USER": "1000000/minute",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="polaris-api-bench-metrics-"),
        }
        log_path = Path(tempfile.gettempdir()) / "polaris-api-bench-gunicorn.log"
        server = _start_gunicorn(env, port, log_path, args.threads)
        base = f"http://127.0.0.1:{port}"
        token = _obtain_token(base, server)

        # Warm both paths (imports, connections, statement caches) before timing.
        _service_seconds(service_ids[:warmup])
        _http_run(base, token, http_ids[:warmup])
        service_ids, http_ids = service_ids[warmup:], http_ids[warmup:]

        # Alternate the arms in rounds so both see the same machine load; this machine is shared, so
        # each arm's best round is the headline and every round is printed.
        per_round = len(service_ids) // args.rounds
        rounds = []
        for index in range(args.rounds):
            chunk = slice(index * per_round, (index + 1) * per_round)
            service_rate = per_round / _service_seconds(service_ids[chunk])
            http_seconds, latencies, errors, client_cpu = _http_run(base, token, http_ids[chunk])
            rounds.append((service_rate, per_round / http_seconds, latencies, errors, client_cpu / per_round))

        # Open loop at fractions of the capacity just measured (the median round: the best one may be a
        # lucky moment of a shared machine), beside the unloaded latency, in this same run.
        capacity = sorted(r[1] for r in rounds)[len(rounds) // 2]
        rates = [fraction * capacity for fraction in LOAD_FRACTIONS]
        open_ids = _more_tasks(sum(round(rate * level_seconds) for rate in rates))
        connection.close()
        unloaded, unloaded_errors = _unloaded(base, token, unloaded_ids)
        offset = 0
        for fraction, rate in zip(LOAD_FRACTIONS, rates, strict=True):
            size = round(rate * level_seconds)
            lat, errs, achieved = _open_loop(base, token, open_ids[offset : offset + size], rate)
            levels.append((fraction, rate, achieved, lat, errs))
            offset += size
    finally:
        _stop(server)
        if not args.keep_db:
            drop_database(base_url, BENCH_DATABASE)

    print(
        f"== API: task transitions, {per_round} per arm per round, {args.rounds} rounds; HTTP through "
        f"gunicorn ({WORKERS} workers x {args.threads} threads, JWT, "
        f"{CONNECTIONS} closed-loop connections) =="
    )
    for index, (service_rate, http_rate, latencies, errors, client_cpu) in enumerate(rounds, 1):
        p50, p99 = _percentile(latencies, 0.50) * 1000, _percentile(latencies, 0.99) * 1000
        print(
            f"round {index}: service {service_rate:6.0f}/s   HTTP {http_rate:6.0f}/s   "
            f"ratio {http_rate / service_rate:5.2f}   closed-loop p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
            f"errors {errors}   load-client CPU {client_cpu * 1000:4.2f} ms/request"
        )
    service_best = max(r[0] for r in rounds)
    best = max(rounds, key=lambda r: r[1])
    errors = sum(r[3] for r in rounds) + unloaded_errors + sum(level[4] for level in levels)
    ratio = best[1] / service_best
    print(
        f"service task_transition (in-process, 1 connection), best round : {service_best:6.0f} transitions/s"
    )
    print(f"HTTP POST …/transition, best round (capacity)                  : {best[1]:6.0f} transitions/s")
    print(f"ratio HTTP/service (best rounds) : {ratio:5.2f}   (target >= 0.60, issue #26)")
    print(
        f"\n== Open-loop latency (fixed arrival rate, {OPEN_LOOP_POOL}-connection pool, "
        "from the intended send time) =="
    )
    u50, u99 = _percentile(unloaded, 0.50) * 1000, _percentile(unloaded, 0.99) * 1000
    print(
        f"unloaded (1 at a time, n={len(unloaded)}) : p50 {u50:6.1f} ms   p99 {u99:6.1f} ms   "
        f"errors {unloaded_errors}"
    )
    half_p99 = None
    for fraction, rate, achieved, lat, errs in levels:
        p50, p99 = _percentile(lat, 0.50) * 1000, _percentile(lat, 0.99) * 1000
        if fraction == 0.50:
            half_p99 = p99
        print(
            f"{fraction:4.0%} of capacity, {rate:5.0f}/s offered, {achieved:5.0f}/s done (n={len(lat)}) : "
            f"p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   p99/unloaded p50 {p99 / u50:5.2f}   errors {errs}"
        )
    assert half_p99 is not None
    print(f"at 50 %: p99 {half_p99:.1f} ms = {half_p99 / u50:.2f} x unloaded p50 (target <= 3)")
    print(f"HTTP errors (every phase)        : {errors}   (target 0)")
    met = ratio >= 0.6 and half_p99 <= 3 * u50 and errors == 0
    print(f"targets                          : {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
