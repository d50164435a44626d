"""Transitions per second through ``task_transition`` beside a raw-SQL floor, measured in one run.

The floor issues the same statements the service does (read the task; the compare-and-swap UPDATE that
writes the transition and claims the stream position; insert the outbox row; lock the SLA record) through
psycopg, one transaction per transition, on the same database. tests/workflow/test_write_path.py holds
the service to those four statements.
pgbench's TPC-B-like rate on a scratch database is printed too when pgbench is available.

    DATABASE_URL=... REDIS_URL=... python bench/foundation_bench.py [--quick] [--transitions N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")


CHUNK = 250


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_tasks(count: int, *, prefix: str) -> list[uuid.UUID]:
    from polaris.accounts.services import agency_get_or_create, user_upsert
    from workflow.services.tasks import task_create

    agency = agency_get_or_create(name=f"Bench {prefix}")
    agent, _ = user_upsert(username=f"bench-agent-{prefix}", password="x", role="agency", agency=agency)
    client, _ = user_upsert(username=f"bench-client-{prefix}", password="x", role="client", agency=agency)
    return [
        task_create(
            actor=agent, title=f"Bench {i}", task_type="intake", client=client, agency=agency, assignee=agent
        ).pk
        for i in range(count)
    ]


def bench_service(task_ids: list[uuid.UUID]) -> float:
    from polaris.accounts.models import User
    from workflow.services.tasks import task_transition

    actor = User.objects.get(username="bench-agent-service")
    started = time.perf_counter()
    for task_id in task_ids:
        task_transition(task_id=task_id, target_state="in_progress", actor=actor)
    return len(task_ids) / (time.perf_counter() - started)


def bench_raw_sql(task_ids: list[uuid.UUID]) -> float:
    """The service's statements, hand-written: the floor an ORM-free implementation would pay.

    Same round trips as ``task_transition`` (see ``CaptureQueriesContext`` on one call): read the task,
    the compare-and-swap UPDATE that persists the transition, the outbox INSERT, the SLA record lookup
    (``FOR UPDATE``) by the sla receiver, COMMIT.
    """
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=False) as conn:
        started = time.perf_counter()
        for task_id in task_ids:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT id, state, version, assignee_id, agency_id, client_id, task_type, service_area,"
                    " priority, action_plan_id, title FROM workflow_task WHERE id = %s",
                    (task_id,),
                )
                row = cur.fetchone()
                version = row[2]
                cur.execute(
                    "UPDATE workflow_task SET state = 'in_progress', version = %s, blocked_reason = '',"
                    " updated_at = now() WHERE id = %s AND version = %s",
                    (version + 1, task_id, version),
                )
                payload = {
                    "task_id": str(task_id),
                    "title": row[10],
                    "task_type": row[6],
                    "service_area": row[7],
                    "priority": row[8],
                    "client_id": row[5],
                    "agency_id": str(row[4]),
                    "assignee_id": row[3],
                    "action_plan_id": None,
                    "old_state": "new",
                    "new_state": "in_progress",
                    "transition": "start",
                    "reason": "",
                }
                cur.execute(
                    "INSERT INTO outbox_outboxevent (id, event_type, aggregate_type, aggregate_id,"
                    " sequence, occurred_at, actor_id, correlation_id, causation_id, depth, payload, status,"
                    " attempts, next_attempt_at, locked_until, last_error, dispatched_at) VALUES (%s,"
                    " 'TaskStateChanged', 'task', %s, %s, now(), %s, %s, NULL, 0, %s, 'pending', 0, now(),"
                    " NULL, '', NULL)",
                    (uuid.uuid4(), task_id, version + 1, row[3], str(uuid.uuid4()), json.dumps(payload)),
                )
                cur.execute(
                    "SELECT * FROM sla_slarecord WHERE task_id = %s ORDER BY id LIMIT 1 FOR UPDATE",
                    (task_id,),
                )
                cur.fetchone()
            conn.commit()
        return len(task_ids) / (time.perf_counter() - started)


def bench_pgbench(seconds: int) -> float | None:
    """pgbench TPC-B-like, one client, on a scratch database of the same server."""
    from django.db import connection

    pgbench = shutil.which("pgbench")
    if pgbench is None:
        try:
            import pgserver

            candidate = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
            pgbench = str(candidate) if candidate.exists() else None
        except ImportError:
            pgbench = None
    if pgbench is None:
        return None
    params = connection.get_connection_params()
    env = dict(os.environ, PGHOST=params.get("host") or "", PGPORT=str(params.get("port") or 5432))
    env["PGUSER"] = params.get("user") or "postgres"
    if params.get("password"):
        env["PGPASSWORD"] = params["password"]
    scratch = "polaris_pgbench_scratch"
    with connection.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        cur.execute(f'CREATE DATABASE "{scratch}"')
    try:
        subprocess.run([pgbench, "-i", "-s", "1", "-q", scratch], env=env, check=True, capture_output=True)
        out = subprocess.run(
            [pgbench, "-c", "1", "-T", str(seconds), scratch],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        with connection.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
    for line in out.splitlines():
        if line.startswith("tps ="):
            return float(line.split()[2])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (500 transitions)")
    parser.add_argument("--transitions", type=int, default=None)
    args = parser.parse_args(argv)
    count = args.transitions or (500 if args.quick else 3000)

    setup_django()
    from django.db import connection

    service_ids = make_tasks(count, prefix="service")
    raw_ids = make_tasks(count, prefix="raw")
    # Warm both paths (connections, statement caches) before timing.
    bench_service(service_ids[:50])
    bench_raw_sql(raw_ids[:50])
    # Alternate chunks so both arms see the same machine load.
    service_seconds = raw_seconds = 0.0
    for start in range(50, count, CHUNK):
        service_chunk, raw_chunk = service_ids[start : start + CHUNK], raw_ids[start : start + CHUNK]
        service_seconds += len(service_chunk) / bench_service(service_chunk)
        raw_seconds += len(raw_chunk) / bench_raw_sql(raw_chunk)
    service_rate = (count - 50) / service_seconds
    raw_rate = (count - 50) / raw_seconds
    connection.close()
    tpcb = bench_pgbench(5 if args.quick else 10)

    print(f"== Foundation: task transitions, one connection, {count - 50} each ==")
    print(f"service task_transition : {service_rate:8.0f} transitions/s")
    print(f"raw SQL floor (psycopg) : {raw_rate:8.0f} transitions/s")
    print(f"ratio service/raw       : {service_rate / raw_rate:8.2f}   (target >= 0.50)")
    if tpcb is not None:
        print(f"pgbench TPC-B-like      : {tpcb:8.0f} tps (1 client; context for this machine)")
    else:
        print("pgbench TPC-B-like      : pgbench not found, skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
