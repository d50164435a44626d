"""Long-polls held while the API serves: 1,000 concurrent ``GET /api/workflow/events?wait=25`` from 50 users
(agents and clients of two agencies) on the async tier, beside an open-loop API load at 50 % of capacity
on the sync tier; the same load without the waiters is the baseline, measured in the same run.

1. Servers as ``make run`` starts them (without reload): gunicorn with 2 sync workers (``gunicorn.conf.py``)
   and the async tier, one uvicorn process (``gunicorn.async.conf.py``, ``polaris.asgi``), DEBUG off, JWT.
2. Capacity: ``GET /api/workflow/tasks/{id}`` closed-loop on 16 connections.
3. Open loop at 50 % of that capacity (fixed send times, latency from the intended send time) for
   ``--seconds``: first without waiters, then with the 1,000 waiters held (a child process on asyncio keeps
   each connection polling with ``wait=25``, following ``next``), then without again.
4. While the waiters are held, the bench commits a task every second (in this process, through
   ``task_create``) and the child stamps when each waiter receives it: commit → waiter latency.
5. PostgreSQL backends while the waiters are held: those in ``LISTEN`` (target: 1 per async process) and
   the growth of all backends from before the waiters.

6. The floor, in the same run: the same waiters, commits and open-loop load against
   ``bench/longpoll_floor_app.py``, a bare ASGI application under the same uvicorn that does nothing but
   wait and answer (no Django, authentication, database or Redis): what the server, the client and the
   shared machine cost before any work of Polaris's (``--skip-floor`` leaves it out).

Targets: API p99 with waiters <= 1.5x without, 0 errors (API and waiters), LISTEN backends <= 1 per async
process, commit → waiter p50 <= 10 ms.

    DATABASE_URL=... REDIS_URL=... python bench/longpoll_bench.py [--quick] [--seconds S] [--keep-db]
"""

from __future__ import annotations

import argparse
import asyncio
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
from pathlib import Path
from urllib.parse import urlsplit

from processes import process_start, process_stop
from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_longpoll_bench"
USERS_PER_AGENCY = {"agency": 20, "client": 5}  # x 2 agencies = 50 users
WAITS = 1000
CONNECTIONS = 16
OPEN_LOOP_POOL = 48
FRACTION = 0.5
PASSWORD = "bench-Polaris-123"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


# -- data -------------------------------------------------------------------------------------------------


def _make_data(task_count: int) -> tuple[list[dict], list[str], dict]:
    """50 users (tokens), task ids to read, and what a commit needs (an agent, a client, the agency)."""
    from polaris.accounts.services import agency_get_or_create, user_upsert
    from polaris.api.auth_tokens import token_for_user
    from workflow.services.tasks import task_create

    users, task_ids, writer = [], [], {}
    for number in (1, 2):
        agency = agency_get_or_create(name=f"Longpoll Bench {number}")
        people = {
            role: [
                user_upsert(username=f"lp-{number}-{role}-{i}", password=PASSWORD, role=role, agency=agency)[
                    0
                ]
                for i in range(count)
            ]
            for role, count in USERS_PER_AGENCY.items()
        }
        for role, members in people.items():
            users += [
                {"token": str(token_for_user(u).access_token), "role": role, "agency": number}
                for u in members
            ]
        for i in range(task_count // 2 if number == 1 else 0):  # read by an agent of agency 1
            task = task_create(
                actor=people["agency"][0],
                title=f"Read me {i}",
                task_type="intake",
                client=people["client"][i % len(people["client"])],
                agency=agency,
                assignee=people["agency"][0],
            )
            task_ids.append(str(task.pk))
        if number == 1:
            writer = {"actor": people["agency"][0], "client": people["client"][0], "agency": agency}
    return users, task_ids, writer


# -- HTTP load (sync tier) --------------------------------------------------------------------------------


def _read_once(connection: http.client.HTTPConnection, path: str, headers: dict) -> bool:
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        connection.close()
        return False


def _capacity(base: str, token: str, task_ids: list[str], seconds: float) -> float:
    address = urlsplit(base)
    headers = {"Authorization": f"Bearer {token}"}
    done = [0] * CONNECTIONS
    stop = time.perf_counter() + seconds

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        for task_id in itertools.cycle(task_ids[index::CONNECTIONS]):
            if time.perf_counter() >= stop:
                break
            done[index] += _read_once(connection, f"/api/workflow/tasks/{task_id}", headers)
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def _open_loop(base: str, token: str, task_ids: list[str], rate: float, seconds: float):
    """(latencies from the intended send times, errors, achieved rate)."""
    address = urlsplit(base)
    headers = {"Authorization": f"Bearer {token}"}
    count = round(rate * seconds)
    latencies = [0.0] * count
    errors = [0] * OPEN_LOOP_POOL
    tickets = itertools.count()
    start = time.perf_counter() + 0.5
    finished = [start] * OPEN_LOOP_POOL

    def sender(slot: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        while (index := next(tickets)) < count:
            due = start + index / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            ok = _read_once(connection, f"/api/workflow/tasks/{task_ids[index % len(task_ids)]}", headers)
            finished[slot] = time.perf_counter()
            latencies[index] = finished[slot] - due
            errors[slot] += not ok
        connection.close()

    threads = [threading.Thread(target=sender, args=(slot,)) for slot in range(OPEN_LOOP_POOL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, sum(errors), count / max(max(finished) - start, 1e-9)


# -- the waiters (a child process on asyncio) -------------------------------------------------------------


async def _poll(host: str, port: int, token: str, wait: float, stop: asyncio.Event, out: dict) -> None:
    """Follow the feed with long-polls until ``stop``; stamp each event's arrival. A dropped connection
    counts as an error and is opened again (as a consumer would), from the same cursor."""
    cursor = ""
    while not stop.is_set():
        cursor = await _poll_connection(host, port, token, wait, stop, out, cursor)


async def _poll_connection(
    host: str, port: int, token: str, wait: float, stop: asyncio.Event, out: dict, cursor: str
) -> str:
    """One connection's long-polls; the cursor reached when it ends."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        out["errors"] += 1
        out["statuses"][type(exc).__name__] = out["statuses"].get(type(exc).__name__, 0) + 1
        await asyncio.sleep(1)
        return cursor
    try:
        while not stop.is_set():
            query = f"wait={wait:g}" + (f"&after={cursor}" if cursor else "&limit=1")
            writer.write(
                f"GET /api/workflow/events?{query} HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = json.loads(await reader.readexactly(length))
            received = time.time()
            out["answers"] += 1
            if status != 200:
                out["errors"] += 1
                out["statuses"][str(status)] = out["statuses"].get(str(status), 0) + 1
                await asyncio.sleep(1)
                continue
            if cursor:  # the first request only fetches a cursor at the head
                for event in body["events"]:
                    out["received"].setdefault(event["aggregate_id"], []).append(received)
            cursor = body["next"]
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        if not stop.is_set():
            out["errors"] += 1
            out["statuses"][type(exc).__name__] = out["statuses"].get(type(exc).__name__, 0) + 1
            await asyncio.sleep(1)
    finally:
        writer.close()
    return cursor


async def _hold(args: argparse.Namespace) -> dict:
    tokens = json.loads(Path(args.tokens).read_text())
    out: dict = {"answers": 0, "errors": 0, "statuses": {}, "received": {}}
    stop = asyncio.Event()
    polls = [
        asyncio.ensure_future(_poll("127.0.0.1", args.port, tokens[i % len(tokens)], args.wait, stop, out))
        for i in range(args.waits)
    ]
    stop_file = Path(args.stop_file)
    while not stop_file.exists():
        await asyncio.sleep(0.1)
    stop.set()
    for poll in polls:
        poll.cancel()
    await asyncio.gather(*polls, return_exceptions=True)
    return out


def _child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--tokens")
    parser.add_argument("--waits", type=int)
    parser.add_argument("--wait", type=float)
    parser.add_argument("--stop-file")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_hold(args))
    Path(args.out).write_text(json.dumps(result))
    return 0


# -- the database's view --------------------------------------------------------------------------------


def _backends() -> tuple[int, int]:
    """(backends in LISTEN, all client backends) of the bench database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE query ILIKE 'LISTEN %%'), count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()


def _registered_waits() -> int:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    return sum(client.zcard(key) for key in client.scan_iter("polaris:feed-waits:*"))


def _cpu_seconds(parent: int) -> float:
    """User + system CPU of ``parent``'s children (gunicorn's workers), from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _started(process: subprocess.Popen, url: str, timeout: float = 60) -> None:
    import httpx

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited during start-up")
        try:
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    if not _wait_for(answers, timeout):
        raise RuntimeError(f"{url} did not answer in time")


def _hold_waiters(port: int, scratch: Path, name: str, waits: int) -> tuple[subprocess.Popen, Path, Path]:
    """The waiters' child process against ``port``: (process, its stop file, its output file)."""
    stop_file, out_file = scratch / f"{name}.stop", scratch / f"{name}.json"
    child = process_start(
        [
            *(sys.executable, str(Path(__file__).resolve()), "--waiters-child", "--port", str(port)),
            *("--tokens", str(scratch / "tokens.json"), "--waits", str(waits), "--wait", "25"),
            *("--stop-file", str(stop_file), "--out", str(out_file)),
        ],
        dict(os.environ),
        scratch / f"{name}.log",
    )
    return child, stop_file, out_file


def _deliveries(held: dict, commits: dict[str, float]) -> tuple[list[float], list[float]]:
    """(every delivery's commit -> waiter in ms, each commit's first delivery in ms)."""
    wake = [
        (stamp - commits[aggregate]) * 1000
        for aggregate, stamps in held["received"].items()
        if aggregate in commits
        for stamp in stamps
    ]
    first = [
        (min(stamps) - commits[aggregate]) * 1000
        for aggregate, stamps in held["received"].items()
        if aggregate in commits
    ]
    return wake, first


def _floor(users: list[dict], waits: int, scratch: Path, load) -> dict:
    """The same waiters and load against ``bench/longpoll_floor_app.py`` (the waiting alone, same uvicorn):
    commit -> waiter, first delivery, the API's latencies while held."""
    import httpx

    in_scope = [u["token"] for u in users if u["agency"] == 1 and u["role"] == "agency"]
    in_scope.append(next(u["token"] for u in users if u["agency"] == 1 and u["role"] == "client"))
    (scratch / "in_scope.txt").write_text("\n".join(in_scope))
    port = _free_port()
    argv = [str(Path(sys.executable).parent / "uvicorn"), "longpoll_floor_app:app"]
    argv += ["--app-dir", str(Path(__file__).resolve().parent), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", "--no-access-log"]
    env = {**os.environ, "FLOOR_IN_SCOPE": str(scratch / "in_scope.txt")}
    server = process_start(argv, env, scratch / "floor.log")
    child = None
    try:
        url = f"http://127.0.0.1:{port}"
        if not _wait_for(lambda: _answers(url + "/api/workflow/events"), 30):
            raise RuntimeError("the floor application did not start")
        child, stop_file, out_file = _hold_waiters(port, scratch, "floor", waits)
        time.sleep(5.0)  # every waiter connected and waiting (the floor keeps no registry to read)
        commits: dict[str, float] = {}
        done = threading.Event()

        def committer() -> None:
            with httpx.Client(base_url=url) as client:
                while not done.wait(1.0):
                    aggregate = secrets.token_hex(8)
                    commits[aggregate] = time.time()
                    client.post("/commit", params={"id": aggregate})

        committing = threading.Thread(target=committer)
        committing.start()
        loaded = load()
        done.set()
        committing.join()
        time.sleep(1.0)
        stop_file.write_text("stop")
        child.wait(timeout=60)
        held = json.loads(out_file.read_text())
    finally:
        if child is not None:
            process_stop(child)
        process_stop(server)
    wake, first = _deliveries(held, commits)
    return {"wake": wake, "first": first, "loaded": loaded, "errors": held["errors"], "commits": len(commits)}


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--waiters-child"]:
        return _child_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 waiters, 8 s phases")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per open-loop phase")
    parser.add_argument("--waits", type=int, default=None, help=f"concurrent long-polls (default {WAITS})")
    parser.add_argument("--async-processes", type=int, default=1, help="the async tier's processes")
    parser.add_argument("--skip-floor", action="store_true", help="skip the bare ASGI application's arm")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    waits = args.waits or (300 if args.quick else WAITS)
    seconds = args.seconds or (8.0 if args.quick else 20.0)

    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        print("DATABASE_URL is required (make bench sets it up)", file=sys.stderr)
        return 2
    recreate_database(base_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(base_url, BENCH_DATABASE)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ["JWT_ACCESS_MINUTES"] = "120"
    scratch = Path(tempfile.mkdtemp(prefix="polaris-longpoll-bench-"))
    servers: list[subprocess.Popen] = []
    child = None
    try:
        django_setup_and_migrate()
        logging.getLogger("httpx").setLevel(logging.WARNING)
        from django.db import connection

        from workflow.services.tasks import task_create

        users, task_ids, writer = _make_data(200)
        per_user = -(-waits // len(users))
        (scratch / "tokens.json").write_text(json.dumps([u["token"] for u in users]))
        connection.close()
        web_port, feed_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "API_THROTTLE_USER": "1000000/minute",
            "EVENT_FEED_MAX_WAITS_PER_USER": str(per_user),
            "PROMETHEUS_MULTIPROC_DIR": str(scratch / "metrics"),
            "LOG_LEVEL": "WARNING",
        }
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        servers.append(
            process_start(
                [gunicorn, "--config", "gunicorn.conf.py", "polaris.wsgi:application"],
                {**env, "GUNICORN_BIND": f"127.0.0.1:{web_port}", "WEB_CONCURRENCY": "2"},
                scratch / "web.log",
            )
        )
        servers.append(
            process_start(
                [gunicorn, "--config", "gunicorn.async.conf.py", "polaris.asgi:application"],
                {
                    **env,
                    "ASYNC_BIND": f"127.0.0.1:{feed_port}",
                    "ASYNC_CONCURRENCY": str(args.async_processes),
                },
                scratch / "feed.log",
            )
        )
        web, feed = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{feed_port}"
        _started(servers[0], web)
        _started(servers[1], feed)
        reader_token = users[0]["token"]
        _capacity(web, reader_token, task_ids, 2.0)  # warm up
        capacity = _capacity(web, reader_token, task_ids, 4.0 if args.quick else 8.0)
        rate = FRACTION * capacity

        baseline = _open_loop(web, reader_token, task_ids, rate, seconds)
        backends_before = _backends()

        child, stop_file, out_file = _hold_waiters(feed_port, scratch, "waiters", waits)
        feed_cpu_started = _cpu_seconds(servers[1].pid)
        all_waiting = _wait_for(lambda: _registered_waits() >= waits, 60)
        time.sleep(0.5)  # the last waits' registration done
        feed_cpu_waiting = _cpu_seconds(servers[1].pid)
        listening, backends_held = _backends()
        commits: dict[str, float] = {}
        done = threading.Event()

        def committer() -> None:
            try:
                while not done.wait(1.0):
                    task = task_create(
                        actor=writer["actor"],
                        title="Wake the waiters",
                        task_type="intake",
                        client=writer["client"],
                        agency=writer["agency"],
                    )
                    commits[str(task.pk)] = time.time()
            finally:
                connection.close()

        committing = threading.Thread(target=committer)
        committing.start()
        loaded = _open_loop(web, reader_token, task_ids, rate, seconds)
        done.set()
        committing.join()
        time.sleep(1.0)  # the last commit's answers
        waiting_at_end = _registered_waits()
        feed_cpu_end = _cpu_seconds(servers[1].pid)
        feed_cpu, feed_cpu_commits = feed_cpu_end - feed_cpu_started, feed_cpu_end - feed_cpu_waiting
        stop_file.write_text("stop")
        child.wait(timeout=60)
        held = json.loads(out_file.read_text())
        after = _open_loop(web, reader_token, task_ids, rate, seconds)
        floor = None
        if not args.skip_floor:
            floor = _floor(
                users, waits, scratch, lambda: _open_loop(web, reader_token, task_ids, rate, seconds)
            )
    finally:
        if child is not None:
            process_stop(child)
        for server in servers:
            process_stop(server)
        if not args.keep_db:
            drop_database(base_url, BENCH_DATABASE)

    wake, first = _deliveries(held, commits)
    in_scope = sum(1 for u in users if u["agency"] == 1 and u["role"] == "agency") + 1
    print(
        f"== Long-polls on the async tier: {waits} waits (wait=25) from {len(users)} users "
        f"({per_user} each; agents and clients of 2 agencies) held beside an open-loop API load =="
    )
    print(
        f"servers: gunicorn 2 sync workers (API) + {args.async_processes} async process(es) (uvicorn); "
        "capacity of "
        f"GET /api/workflow/tasks/{{id}}: {capacity:.0f}/s closed-loop; open loop at {FRACTION:.0%} = "
        f"{rate:.0f}/s for {seconds:g} s per phase"
    )
    rows = [("without waiters", baseline), ("with waiters held", loaded), ("without again", after)]
    for name, (lat, errs, achieved) in rows:
        p50, p99 = _percentile(lat, 0.5) * 1000, _percentile(lat, 0.99) * 1000
        print(f"{name:<18}: p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   {achieved:5.0f}/s done   errors {errs}")
    base_p99 = _percentile(baseline[0], 0.99)
    ratio = _percentile(loaded[0], 0.99) / base_p99
    print(f"API p99 with / without waiters : {ratio:5.2f}   (target <= 1.5)")
    print(
        f"waiters registered            : {'all' if all_waiting else 'NOT all'} {waits} "
        f"(still waiting at the end: {waiting_at_end})"
    )
    print(
        f"PostgreSQL backends in LISTEN : {listening} for {args.async_processes} async process(es)   "
        "(target <= 1 per process); "
        f"all backends {backends_before[1]} before the waiters, {backends_held} with them"
    )
    print(
        f"commit -> waiter              : {len(commits)} commits, {len(wake)} deliveries "
        f"(~{in_scope * per_user} waits in scope each): p50 {_percentile(wake, 0.5):6.1f} ms   "
        f"p90 {_percentile(wake, 0.9):6.1f} ms   p99 {_percentile(wake, 0.99):6.1f} ms   "
        "(target p50 <= 10 ms)"
    )
    print(
        f"first delivery of each commit  : p50 {_percentile(first, 0.5):6.1f} ms   "
        f"max {max(first, default=0):6.1f} ms"
    )
    print(
        f"async tier CPU while held      : {feed_cpu:.1f} s for {held['answers']} long-poll answers = "
        f"{feed_cpu * 1000 / max(held['answers'], 1):.2f} ms per answered long-poll (its re-poll included)"
    )
    print(
        f"  of which, while commits ran  : {feed_cpu_commits:.1f} s for {len(wake)} deliveries = "
        f"{feed_cpu_commits * 1000 / max(len(wake), 1):.2f} ms per delivery (its re-poll included)"
    )
    if floor is not None:
        print(
            f"the floor (bench/longpoll_floor_app.py; the same waiters and load, the waiting alone): "
            f"{floor['commits']} commits, {len(floor['wake'])} deliveries: commit -> waiter p50 "
            f"{_percentile(floor['wake'], 0.5):.1f} ms, p90 {_percentile(floor['wake'], 0.9):.1f} ms; first "
            f"delivery p50 {_percentile(floor['first'], 0.5):.1f} ms; API p99 with / without "
            f"{_percentile(floor['loaded'][0], 0.99) / base_p99:.2f}; waiters' errors {floor['errors']}"
        )
    errors = baseline[1] + loaded[1] + after[1] + held["errors"]
    print(f"errors: API {baseline[1] + loaded[1] + after[1]}, waiters {held['errors']} {held['statuses']}")
    met = (
        ratio <= 1.5
        and errors == 0
        and listening <= args.async_processes
        and all_waiting
        and wake
        and _percentile(wake, 0.5) <= 10
    )
    print(f"targets                       : {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
