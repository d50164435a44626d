"""Case work over HTTP: PATCH beside the transition endpoint, and one bulk request beside single requests.

1. ``PATCH /api/workflow/tasks/{id}`` (priority) and ``POST …/transition`` (new → in_progress) through
   gunicorn (2 sync workers, DEBUG off, JWT), 16 connections, alternating rounds. Target: PATCH rate
   >= 0.9 x the transition rate.
2. One connection: 500 tasks moved by 500 single ``POST …/transition`` requests, beside 500 other tasks
   moved by one ``POST /api/workflow/tasks/bulk`` (action transition): the same 500 events written.
   Target: bulk >= 3x faster per item.

Runs on a scratch database (``polaris_casework_bench``, dropped at the end).

    DATABASE_URL=... REDIS_URL=... python bench/casework_bench.py [--quick] [--rounds R] [--keep-db]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from api_bench import PASSWORD, WORKERS, _free_port, _obtain_token, _start_gunicorn
from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_casework_bench"
CONNECTIONS = 16
BULK_ITEMS = 500


def _make_tasks(count: int) -> list[uuid.UUID]:
    """``count`` tasks in state ``new`` with an assignee, for the agent api_bench logs in as."""
    from polaris.accounts.services import agency_get_or_create, user_upsert
    from workflow.services.tasks import task_create

    agency = agency_get_or_create(name="API Bench")
    agent, _ = user_upsert(username="bench-api-agent", password=PASSWORD, role="agency", agency=agency)
    client, _ = user_upsert(username="bench-api-client", password="x", role="client", agency=agency)
    return [
        task_create(
            actor=agent, title=f"Bench {i}", task_type="intake", client=client, agency=agency, assignee=agent
        ).pk
        for i in range(count)
    ]


def _request(
    connection: http.client.HTTPConnection, method: str, path: str, body: bytes, headers: dict
) -> bool:
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        connection.close()
        return False


def _concurrent(base: str, token: str, ids: list[uuid.UUID], kind: str) -> tuple[float, int]:
    """(requests per second, errors) for one request per task over ``CONNECTIONS`` connections."""
    address = urlsplit(base)
    shares = [ids[i::CONNECTIONS] for i in range(CONNECTIONS)]
    errors = [0] * CONNECTIONS
    start_line = threading.Barrier(CONNECTIONS + 1)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if kind == "patch":
        method, suffix, body = "PATCH", "", json.dumps({"priority": "high"}).encode()
    else:
        method, suffix, body = "POST", "/transition", json.dumps({"target_state": "in_progress"}).encode()

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        start_line.wait()
        for task_id in shares[index]:
            errors[index] += not _request(
                connection, method, f"/api/workflow/tasks/{task_id}{suffix}", body, headers
            )
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return len(ids) / (time.perf_counter() - started), sum(errors)


def _singles_seconds(base: str, token: str, ids: list[uuid.UUID]) -> tuple[float, int]:
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps({"target_state": "in_progress"}).encode()
    started = time.perf_counter()
    errors = sum(
        not _request(connection, "POST", f"/api/workflow/tasks/{i}/transition", body, headers) for i in ids
    )
    seconds = time.perf_counter() - started
    connection.close()
    return seconds, errors


def _bulk_seconds(base: str, token: str, ids: list[uuid.UUID]) -> tuple[float, int]:
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    body = json.dumps(
        {"action": "transition", "ids": [str(i) for i in ids], "params": {"target_state": "in_progress"}}
    ).encode()
    started = time.perf_counter()
    connection.request("POST", "/api/workflow/tasks/bulk", body=body, headers=headers)
    response = connection.getresponse()
    payload = json.loads(response.read())
    seconds = time.perf_counter() - started
    connection.close()
    failed = payload["counts"]["failed"] if response.status == 200 else len(ids)
    return seconds, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (600 requests per arm)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    per_arm = 600 if args.quick else 2400
    per_round = per_arm // args.rounds
    warmup = 100
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        print("DATABASE_URL is required (make bench sets it up)", file=sys.stderr)
        return 2
    recreate_database(base_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(base_url, BENCH_DATABASE)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    server = None
    try:
        django_setup_and_migrate()
        from django.db import connection

        from outbox.models import OutboxEvent

        bulk_rounds = args.rounds
        ids = _make_tasks(2 * (per_arm + warmup) + 2 * BULK_ITEMS * bulk_rounds + 20)
        patch_ids, ids = ids[: per_arm + warmup], ids[per_arm + warmup :]
        move_ids, ids = ids[: per_arm + warmup], ids[per_arm + warmup :]
        env = {
            **os.environ,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "API_THROTTLE_USER": "1000000/minute",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="polaris-casework-bench-metrics-"),
        }
        port = _free_port()
        log_path = Path(tempfile.gettempdir()) / "polaris-casework-bench-gunicorn.log"
        server = _start_gunicorn(env, port, log_path, 1)
        base = f"http://127.0.0.1:{port}"
        token = _obtain_token(base, server)
        _concurrent(base, token, patch_ids[:warmup], "patch")
        _concurrent(base, token, move_ids[:warmup], "transition")
        _singles_seconds(base, token, ids[:10])
        _bulk_seconds(base, token, ids[10:20])
        patch_ids, move_ids, ids = patch_ids[warmup:], move_ids[warmup:], ids[20:]

        rates = []
        for index in range(args.rounds):
            chunk = slice(index * per_round, (index + 1) * per_round)
            transition_rate, transition_errors = _concurrent(base, token, move_ids[chunk], "transition")
            patch_rate, patch_errors = _concurrent(base, token, patch_ids[chunk], "patch")
            rates.append((transition_rate, patch_rate, transition_errors + patch_errors))
        bulk = []
        for index in range(bulk_rounds):
            single = ids[2 * index * BULK_ITEMS : (2 * index + 1) * BULK_ITEMS]
            many = ids[(2 * index + 1) * BULK_ITEMS : (2 * index + 2) * BULK_ITEMS]
            events_before = OutboxEvent.objects.count()
            single_seconds, single_errors = _singles_seconds(base, token, single)
            single_events = OutboxEvent.objects.count() - events_before
            bulk_seconds, bulk_failed = _bulk_seconds(base, token, many)
            bulk_events = OutboxEvent.objects.count() - events_before - single_events
            bulk.append(
                (single_seconds, bulk_seconds, single_errors + bulk_failed, single_events, bulk_events)
            )
        connection.close()
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        if not args.keep_db:
            drop_database(base_url, BENCH_DATABASE)

    print(
        f"== Case work: PATCH vs transition, {per_round} requests per arm per round, gunicorn "
        f"{WORKERS} workers, JWT, {CONNECTIONS} connections =="
    )
    for index, (transition_rate, patch_rate, errors) in enumerate(rates, 1):
        print(
            f"round {index}: transition {transition_rate:6.0f}/s   PATCH {patch_rate:6.0f}/s   "
            f"ratio {patch_rate / transition_rate:5.2f}   errors {errors}"
        )
    best_transition, best_patch = max(r[0] for r in rates), max(r[1] for r in rates)
    patch_ratio = best_patch / best_transition
    print(
        f"best rounds: PATCH {best_patch:.0f}/s vs transition {best_transition:.0f}/s, "
        f"ratio {patch_ratio:.2f} (target >= 0.90)"
    )
    print(
        f"== Bulk: {BULK_ITEMS} transitions in one request vs {BULK_ITEMS} single requests, one connection =="
    )
    for index, (single_seconds, bulk_seconds, errors, single_events, bulk_events) in enumerate(bulk, 1):
        print(
            f"round {index}: single {single_seconds / BULK_ITEMS * 1000:6.2f} ms/item   bulk "
            f"{bulk_seconds / BULK_ITEMS * 1000:6.2f} ms/item   "
            f"speed-up {single_seconds / bulk_seconds:5.2f}x   "
            f"events {single_events}/{bulk_events}   errors {errors}"
        )
    best_single, best_bulk = min(b[0] for b in bulk), min(b[1] for b in bulk)
    speedup = best_single / best_bulk
    errors = sum(r[2] for r in rates) + sum(b[2] for b in bulk)
    same_events = all(b[3] == b[4] == BULK_ITEMS for b in bulk)
    print(
        f"best rounds: single {best_single / BULK_ITEMS * 1000:.2f} ms/item, "
        f"bulk {best_bulk / BULK_ITEMS * 1000:.2f} ms/item, speed-up {speedup:.2f}x (target >= 3x); "
        f"same events written: {same_events}; errors {errors}"
    )
    met = patch_ratio >= 0.9 and speedup >= 3 and errors == 0 and same_events
    print(f"targets: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
