"""Outbox dispatch: throughput and peak RSS of one worker process, and commit → handled latency.

Measured in one run, on a scratch database (``polaris_dispatch_bench``, dropped at the end):

1. Throughput. N pending events (one per aggregate, a realistic task payload) are drained by one fresh
   process running the real dispatcher (``outbox_dispatch``, the body of the Celery task) with one
   no-op handler that writes its ledger row. Reported: events/s and the process's peak RSS, for
   10,000 and 100,000 events. Baseline, same run: the same SQL (the claim with SKIP LOCKED and the
   per-aggregate probe, the ledger look-up and INSERT, the status UPDATE, with the same transaction
   settings) issued in the same
   batches straight through psycopg by a fresh process, with no Django, no handler and no Python per
   event — the floor the dispatcher's own overhead sits on. Targets: >= 5,000 events/s, RSS <= 200 MB
   at 100,000 and flat with backlog size.
2. Latency. A real Celery worker (solo pool) and beat (interval 5 s) against Redis; this process makes
   task transitions at a steady rate, and each one's lag is measured from its commit to the moment the
   worker's handler wrote its effect (a row stamped with ``clock_timestamp()``). With the after-commit
   kick on, then poll-only (kick off, beat alone) in the same run. Targets with the kick: p50 <= 50 ms,
   p99 <= 250 ms; poll-only should average about half the beat interval.

    DATABASE_URL=... REDIS_URL=... python bench/dispatch_bench.py [--quick] [--keep-db] [--no-latency]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

from processes import celery_start, process_stop
from scratch import database_url, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

# DEBUG off (it would record every query); a throwaway key for the scratch run.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("LOG_LEVEL", "WARNING")

BENCH_DATABASE = "polaris_dispatch_bench"
EVENT_TYPE = "BenchDispatched"
HANDLER = "bench.noop"
BATCH = int(os.environ.get("OUTBOX_DISPATCH_BATCH_SIZE") or 500)  # the dispatcher reads the same variable
PAYLOAD = json.dumps(
    {
        "task_id": "00000000-0000-0000-0000-000000000000",
        "title": "Initial intake",
        "task_type": "intake",
        "service_area": "housing",
        "priority": "normal",
        "client_id": 42,
        "agency_id": "00000000-0000-0000-0000-000000000001",
        "assignee_id": 7,
        "action_plan_id": None,
        "old_state": "new",
        "new_state": "in_progress",
        "transition": "start",
        "reason": "",
    }
)


# --- the scratch database -------------------------------------------------------------------------


def _psycopg_connect():
    import psycopg

    return psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)


# --- throughput -----------------------------------------------------------------------------------


def _insert_events(count: int) -> None:
    """``count`` pending events, one per aggregate, written with COPY (setup, not measured)."""
    from datetime import UTC, datetime, timedelta

    start = datetime.now(UTC) - timedelta(minutes=1)
    columns = (
        "id, event_type, aggregate_type, aggregate_id, sequence, occurred_at, correlation_id, depth, "
        "payload, status, attempts, next_attempt_at, last_error"
    )
    with _psycopg_connect() as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY outbox_outboxevent ({columns}) FROM STDIN") as copy:
            for index in range(count):
                at = start + timedelta(microseconds=index)
                copy.write_row(
                    (
                        uuid.uuid4(),
                        EVENT_TYPE,
                        "task",
                        uuid.uuid4(),
                        1,
                        at,
                        "bench",
                        0,
                        PAYLOAD,
                        "pending",
                        0,
                        at,
                        "",
                    )
                )
        cursor.execute("ANALYZE outbox_outboxevent")


def _clear_events() -> None:
    with _psycopg_connect() as conn:
        conn.execute("DELETE FROM outbox_handledevent WHERE handler = %s", [HANDLER])
        conn.execute("DELETE FROM outbox_outboxevent WHERE event_type = %s", [EVENT_TYPE])
        conn.execute("VACUUM ANALYZE outbox_outboxevent")
        conn.execute("VACUUM ANALYZE outbox_handledevent")


def _counts() -> tuple[int, int]:
    with _psycopg_connect() as conn:
        dispatched = conn.execute(
            "SELECT count(*) FROM outbox_outboxevent WHERE event_type = %s AND status = 'dispatched'",
            [EVENT_TYPE],
        ).fetchone()[0]
        ledger = conn.execute(
            "SELECT count(*) FROM outbox_handledevent WHERE handler = %s", [HANDLER]
        ).fetchone()[0]
    return dispatched, ledger


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _child_dispatcher() -> dict:
    """In a fresh process: the real dispatcher drains everything with one no-op handler."""
    import django

    django.setup()
    from django.db import connection

    from outbox import registry
    from outbox.dispatcher import outbox_dispatch

    registry._handlers.clear()  # only the handler under test (other apps' handlers are not measured)
    registry.register_handler(HANDLER, lambda event: None)
    connection.ensure_connection()
    started = time.perf_counter()
    handled = 0
    while True:
        report = outbox_dispatch(budget_seconds=3600)
        handled += report.dispatched
        if not report.claimed:
            break
    seconds = time.perf_counter() - started
    return {"events": handled, "seconds": seconds, "rss_mb": _peak_rss_mb()}


def _child_baseline() -> dict:
    """In a fresh process: the dispatcher's SQL, batch by batch, through psycopg alone."""
    from datetime import UTC, datetime, timedelta

    os.environ.setdefault("DATABASE_URL", "")
    import django

    django.setup()  # only to read the claim statement; the work below uses psycopg directly
    from outbox.claims import OUTBOX_LEASE

    claim_sql = OUTBOX_LEASE.claim_sql()

    conn = _psycopg_connect()
    started = time.perf_counter()
    handled = 0
    while True:
        now = datetime.now(UTC)
        params = {
            "pending": "pending",
            "processing": "processing",
            "now": now,
            "lease_until": now + timedelta(seconds=60),
            "limit": BATCH,
        }
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit TO OFF")
            rows = conn.execute(claim_sql, params).fetchall()
        if not rows:
            break
        ids = [row[0] for row in rows]
        conn.execute(
            "SELECT event_id FROM outbox_handledevent WHERE handler = %s AND event_id = ANY(%s)",
            [HANDLER, ids],
        ).fetchall()
        with conn.transaction():
            conn.execute(
                "INSERT INTO outbox_handledevent (handler, event_id, handled_at) "
                "SELECT %s, unnest(%s::uuid[]), %s",
                [HANDLER, ids, now],
            )
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit TO OFF")
            conn.execute(
                "UPDATE outbox_outboxevent SET status = 'dispatched', dispatched_at = %s, "
                "locked_until = NULL, last_error = '' WHERE id = ANY(%s) AND status = 'processing'",
                [now, ids],
            )
        handled += len(ids)
    seconds = time.perf_counter() - started
    conn.close()
    return {"events": handled, "seconds": seconds, "rss_mb": _peak_rss_mb()}


def _run_child(kind: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def throughput(sizes: list[int]) -> list[dict]:
    rows = []
    for size in sizes:
        _insert_events(size)
        measured = _run_child("dispatcher")
        dispatched, ledger = _counts()
        if (dispatched, ledger) != (size, size):
            raise RuntimeError(f"drained {dispatched} events, {ledger} ledger rows; expected {size}")
        _clear_events()

        _insert_events(size)
        baseline = _run_child("baseline")
        _clear_events()

        rate = measured["events"] / measured["seconds"]
        base_rate = baseline["events"] / baseline["seconds"]
        rows.append({"size": size, "rate": rate, "rss": measured["rss_mb"], "base_rate": base_rate})
        print(
            f"  {size:>7,} events: dispatcher {rate:>8,.0f} ev/s (peak RSS {measured['rss_mb']:.0f} MB) | "
            f"raw SQL baseline {base_rate:>8,.0f} ev/s (RSS {baseline['rss_mb']:.0f} MB) | "
            f"ratio {rate / base_rate:.2f}",
            flush=True,
        )
    return rows


# --- latency --------------------------------------------------------------------------------------


def _celery(kind: str, args: list[str], env: dict[str, str], log_dir: Path) -> subprocess.Popen:
    return celery_start(kind, args, env, log_dir / f"{kind}.log")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not within {timeout}s")


def _pending() -> int:
    from outbox.models import OutboxEvent

    return OutboxEvent.objects.filter(status__in=["pending", "processing"]).count()


def _stamp(into: list[float]) -> None:
    into.append(time.time())


def _latency_round(*, transitions: int, rate: float, kick: bool, actor, client, agency) -> list[float]:
    from django.conf import settings
    from django.db import connection, transaction

    from tests.support import effect_probe as effects
    from workflow.services.tasks import task_create, task_transition

    settings.OUTBOX_KICK_ON_COMMIT = kick
    tasks = [
        task_create(
            actor=actor,
            title=f"Latency {i}",
            task_type="intake",
            client=client,
            agency=agency,
            assignee=actor,
        )
        for i in range((transitions + 1) // 2)
    ]
    _wait(lambda: _pending() == 0, 60, "the setup backlog drained")
    steps = [(task, "in_progress") for task in tasks] + [(task, "completed") for task in tasks]
    steps = steps[:transitions]
    stamps: dict = {}
    interval = 1.0 / rate
    next_at = time.monotonic()
    for task, target in steps:
        next_at += interval
        committed: list[float] = []
        with transaction.atomic():
            # Registered before the transition's own kick, so it runs first at commit: the commit time.
            transaction.on_commit(partial(_stamp, committed))
            _, event = task_transition(task_id=task.pk, target_state=target, actor=actor)
        stamps[event.pk] = committed[0]
        time.sleep(max(0.0, next_at - time.monotonic()))

    def handled() -> bool:
        return len(stamps.keys() & effects.handled_event_ids()) == len(stamps)

    _wait(handled, 60, "every transition handled")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id, extract(epoch FROM min(created_at)) FROM {effects.EFFECT_TABLE} "
            "WHERE event_id = ANY(%s) GROUP BY event_id",
            [list(stamps)],
        )
        return [float(at) - stamps[event_id] for event_id, at in cursor.fetchall()]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def latency(*, transitions: int, rate: float, beat_interval: float) -> dict:
    from polaris.accounts.models import Agency, ClientAgencyLink, User
    from tests.support import effect_probe as effects

    effects.effect_table_create()
    agency = Agency.objects.create(name="Dispatch Bench", slug="dispatch-bench")
    actor = User.objects.create(username="bench-dispatch-agent", role="agency", agency=agency)
    client = User.objects.create(username="bench-dispatch-client", role="client", agency=agency)
    ClientAgencyLink.objects.create(client=client, agency=agency)  # the agency serves its client

    env = {
        **os.environ,
        "OUTBOX_EXTRA_HANDLER_MODULES": "bench.worker_handlers",
        "OUTBOX_DISPATCH_INTERVAL_SECONDS": str(beat_interval),
        "PYTHONUNBUFFERED": "1",
    }
    from polaris.celery import app

    app.control.purge()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp)
        worker = _celery(
            "worker",
            ["-P", "solo", "-c", "1", "-n", "dispatch-bench@%h", "--without-gossip", "--without-mingle"],
            env,
            log_dir,
        )
        beat = _celery("beat", ["-s", str(log_dir / "schedule")], env, log_dir)
        try:
            time.sleep(1)
            for label, kick in (("kick on", True), ("poll-only", False)):
                lags = _latency_round(
                    transitions=transitions, rate=rate, kick=kick, actor=actor, client=client, agency=agency
                )
                results[label] = lags
        except Exception:
            os.environ["BENCH_SHOW_LOGS"] = "1"
            raise
        finally:
            if os.environ.get("BENCH_SHOW_LOGS"):
                for name in ("worker", "beat"):
                    print(
                        f"--- {name} log ---\n{(log_dir / f'{name}.log').read_text()[-6000:]}",
                        file=sys.stderr,
                    )
            process_stop(worker)
            process_stop(beat)
    for label, lags in results.items():
        p50, p99 = _percentile(lags, 0.5) * 1000, _percentile(lags, 0.99) * 1000
        mean, worst = statistics.fmean(lags) * 1000, max(lags) * 1000
        print(
            f"  {label:<9}: p50 {p50:>7.1f} ms  p99 {p99:>7.1f} ms  mean {mean:>7.1f} ms  max {worst:.0f} ms"
            f"  (n={len(lags)})",
            flush=True,
        )
    kick_p50 = _percentile(results["kick on"], 0.5)
    poll_mean = statistics.fmean(results["poll-only"])
    print(f"  poll-only mean / kick p50: {poll_mean / kick_p50:,.0f}x", flush=True)
    return results


# --- entry point ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (well under a minute)")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch database")
    parser.add_argument("--no-latency", action="store_true", help="skip the worker/Redis latency part")
    parser.add_argument("--rate", type=float, default=5.0, help="transitions per second (latency part)")
    parser.add_argument("--no-throughput", action="store_true", help="skip the throughput part")
    parser.add_argument("--child", choices=["dispatcher", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = _child_dispatcher() if args.child == "dispatcher" else _child_baseline()
        print(json.dumps(result))
        return 0

    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is required (scripts/devstack.py bench sets it).", file=sys.stderr)
        return 2
    logging.disable(logging.WARNING)
    recreate_database(url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(url, BENCH_DATABASE)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)

        if not args.no_throughput:
            sizes = [2_000, 10_000] if args.quick else [10_000, 100_000]
            print(f"Dispatch throughput: one process, batches of {BATCH}, a no-op handler writing its ledger")
            rows = throughput(sizes)
            big = rows[-1]
            rate_met = "met" if min(r["rate"] for r in rows) >= 5000 else "NOT met"
            rss_met = "met" if big["rss"] <= 200 else "NOT met"
            print(f"  targets: >= 5,000 ev/s -> {rate_met}; RSS <= 200 MB at {big['size']:,} -> {rss_met}")
        if not args.no_latency:
            transitions = 30 if args.quick else 200
            print(
                f"\nDispatch latency: {transitions} transitions at {args.rate:g}/s, a real worker + beat "
                "(5 s), commit -> handler effect"
            )
            results = latency(transitions=transitions, rate=args.rate, beat_interval=5.0)
            kick = results["kick on"]
            met = _percentile(kick, 0.5) <= 0.050 and _percentile(kick, 0.99) <= 0.250
            print(f"  targets with the kick (p50 <= 50 ms, p99 <= 250 ms): {'met' if met else 'NOT met'}")
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(url, BENCH_DATABASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
