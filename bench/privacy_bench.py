"""Erasure and retention under load, on a scratch database (``polaris_privacy_bench``, dropped at the end).

1. Erasure. A client with 1,000 tasks and 20,000 events (``--quick``: 200 and 4,000), every task with a
   title, a description and a blocked reason, every event a payload with the title and a reason, beside a
   history of other clients' events (200,000; ``--quick`` 20,000). ``client_erase`` runs once (one
   transaction) while writers (a separate process: task creations and transitions for other clients,
   each its own transaction) run. Targets: the erasure <= 5 s; the writers' p99 during it <= 1.5x their p99
   in the window just before (the baseline, same run, same writers).
2. Retention. 2,000,000 dispatched events older than the retention (``--quick``: 200,000), half with a
   ledger row, trimmed by ``outbox.retention.history_trim`` (batches of 1,000, each its own transaction, at
   the retention's pace: ``RETENTION_DUTY_CYCLE``, runs of ``RETENTION_RUN_SECONDS`` back to back) while the
   writers run. Target: the writers' p99 during the trim <= 1.5x their p99 just before.
   Then three retention cycles (insert the same amount, trim; after every trim, writers run while two
   plain ``VACUUM`` passes go, as autovacuum's would): the outbox's table + index size after each cycle's
   insert stays flat (cycle 3 / cycle 1 <= 1.1). The first fill is printed too: it went into an empty
   table, and the writers' rows added since stay.

    DATABASE_URL=... python bench/privacy_bench.py [--quick] [--only erasure|retention] [--keep-db]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratch import database_url, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_privacy_bench"
WRITER_CLIENTS = 20


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- the writers: another process, so the erasure's Python work does not share their GIL ------------------


def writer_main(out: str, seconds: float) -> None:
    """Create a task for one of the writer clients and start it, again and again; one line per operation:
    ``[started (epoch s), latency (s)]``."""
    import django

    django.setup()
    from polaris.accounts.models import User
    from workflow.services.tasks import task_create, task_transition

    agent = User.objects.get(username="bench-agent")
    clients = list(User.objects.filter(username__startswith="bench-writer-client"))
    deadline = time.time() + seconds
    n = 0
    with open(out, "w", buffering=1) as sink:
        while time.time() < deadline:
            client = clients[n % len(clients)]
            began = time.time()
            t0 = time.perf_counter()
            task = task_create(
                actor=agent,
                title=f"Writer {n}",
                task_type="intake",
                client=client,
                agency=agent.agency,
                assignee=agent,
            )
            sink.write(json.dumps([began, time.perf_counter() - t0]) + "\n")
            began = time.time()
            t0 = time.perf_counter()
            task_transition(task_id=task.pk, target_state="in_progress", actor=agent, reason="writer")
            sink.write(json.dumps([began, time.perf_counter() - t0]) + "\n")
            n += 1


def writers_start(seconds: float, log_dir: Path) -> tuple[subprocess.Popen, Path]:
    out = log_dir / f"writer-{time.time_ns()}.jsonl"
    process = subprocess.Popen(
        [sys.executable, __file__, "--writer", str(out), str(seconds)],
        cwd=ROOT / "bench",
        env=os.environ.copy(),
    )
    return process, out


def latencies(out: Path, start: float, end: float) -> list[float]:
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return [latency for began, latency in rows if start <= began < end]


# --- data -----------------------------------------------------------------------------------------------


def people() -> dict:
    from polaris.accounts.models import Agency, ClientAgencyLink, User

    agency = Agency.objects.create(name="Bench agency", slug="bench-agency")
    admin = User.objects.create(username="bench-admin", role=User.Role.ADMIN)
    agent = User.objects.create(username="bench-agent", role=User.Role.AGENCY, agency=agency)
    client = User.objects.create(
        username="bench-client",
        role=User.Role.CLIENT,
        agency=agency,
        first_name="Private",
        email="p@example.org",
    )
    writers = [
        User.objects.create(username=f"bench-writer-client-{n}", role=User.Role.CLIENT, agency=agency)
        for n in range(WRITER_CLIENTS)
    ]
    # Work for a client needs an explicit link to the agency (issue #22); the erased client has one too.
    ClientAgencyLink.objects.bulk_create(
        ClientAgencyLink(client=c, agency=agency) for c in (client, *writers)
    )
    return {"agency": agency, "admin": admin, "agent": agent, "client": client}


def client_work(*, client, agency, agent, tasks: int, events: int) -> None:
    """``tasks`` tasks of ``client`` (set-based) with ``events`` events in all, sequences gap-free."""
    from django.db import connection

    from outbox.models import OutboxEvent
    from workflow.models import Task

    per_task = events // tasks
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Task._meta.db_table}
              (id, title, description, task_type, service_area, priority, client_id, agency_id, assignee_id,
               blocked_reason, state, version, created_at, updated_at)
            SELECT gen_random_uuid(), 'Private matter ' || g, 'Lives at ' || g || ' Private Street',
                   'intake', 'housing', 'normal', %s, %s, %s, 'Waiting on the landlord ' || g, 'blocked', %s,
                   now(), now()
            FROM generate_series(1, %s) AS g
            """,
            [client.pk, agency.pk, agent.pk, per_task, tasks],
        )
        cursor.execute(
            f"""
            INSERT INTO {OutboxEvent._meta.db_table}
              (id, event_type, aggregate_type, aggregate_id, sequence, occurred_at, correlation_id, depth,
               payload, status, attempts, next_attempt_at, last_error, dispatched_at)
            SELECT gen_random_uuid(), 'TaskStateChanged', 'task', t.id, s, now(), 'bench', 0,
                   jsonb_build_object('task_id', t.id::text, 'title', t.title, 'client_id', t.client_id,
                     'agency_id', t.agency_id::text, 'task_type', 'intake', 'old_state', 'new',
                     'new_state', 'blocked', 'transition', 'block', 'reason', t.blocked_reason,
                     'changes', jsonb_build_object(
                       'title', jsonb_build_object('old', t.title, 'new', t.title))),
                   'dispatched', 1, now(), '', now()
            FROM {Task._meta.db_table} t CROSS JOIN generate_series(1, %s) AS s
            WHERE t.client_id = %s
            """,
            [per_task, client.pk],
        )


def history(count: int, *, days_ago: int = 0, ledger: bool = False) -> None:
    """``count`` dispatched events of other aggregates, ``days_ago`` old; half with a ledger row."""
    from django.db import connection

    from outbox.models import HandledEvent, OutboxEvent

    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {OutboxEvent._meta.db_table}
              (id, event_type, aggregate_type, aggregate_id, sequence, occurred_at, correlation_id, depth,
               payload, status, attempts, next_attempt_at, last_error, dispatched_at)
            SELECT gen_random_uuid(), 'TaskCreated', 'task', gen_random_uuid(), 1,
                   now() - make_interval(days => %s), 'bench', 0,
                   jsonb_build_object('title', 'Other ' || g, 'client_id', 0, 'reason', ''),
                   'dispatched', 1, now(), '', now() - make_interval(days => %s)
            FROM generate_series(1, %s) AS g
            """,
            [days_ago, days_ago, count],
        )
        if ledger:
            cursor.execute(
                f"""
                INSERT INTO {HandledEvent._meta.db_table} (handler, event_id, handled_at)
                SELECT 'automation', id, now() FROM {OutboxEvent._meta.db_table}
                WHERE occurred_at < now() - interval '1 day' AND random() < 0.5
                ON CONFLICT DO NOTHING
                """
            )
        cursor.execute(f"ANALYZE {OutboxEvent._meta.db_table}")


def outbox_size() -> int:
    from django.db import connection

    from outbox.models import OutboxEvent

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [OutboxEvent._meta.db_table])
        return cursor.fetchone()[0]


def index_sizes() -> dict[str, int]:
    """The outbox's indexes by name, in bytes."""
    from django.db import connection

    from outbox.models import OutboxEvent

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index"
            " WHERE indrelid = %s::regclass",
            [OutboxEvent._meta.db_table],
        )
        return dict(cursor.fetchall())


def vacuum() -> None:
    from django.db import connection

    from outbox.models import HandledEvent, OutboxEvent

    with connection.cursor() as cursor:
        for model in (OutboxEvent, HandledEvent):
            cursor.execute(f"VACUUM {model._meta.db_table}")


def autovacuum_passes(log_dir: Path) -> None:
    """What follows a trim in production: the writers go on and autovacuum visits twice. A B-tree page a
    VACUUM empties is reusable only once no transaction that could still see it runs — in practice from
    the next VACUUM after later transactions — so one pass on an idle database (this bench's cycles run
    alone) leaves the emptied pages of the indexes that grow at their right end, ``(occurred_at, id)`` and
    ``(xid, …)``, unusable for the next cycle's insert, and the history seems to grow by them once."""
    from django.db import connections

    connections.close_all()
    process, out = writers_start(120, log_dir)
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and out.stat().st_size > 1000):
        time.sleep(0.2)
    vacuum()
    time.sleep(2)
    vacuum()
    process.terminate()
    process.wait()


# --- the arms -------------------------------------------------------------------------------------------


def under_writers(work, *, log_dir: Path, baseline_seconds: float, budget_seconds: float) -> tuple:
    """Writers run; ``baseline_seconds`` of them alone, then ``work()`` meanwhile. Returns (work's result,
    its seconds, baseline p99, p99 during, samples)."""
    from django.db import connections

    connections.close_all()
    process, out = writers_start(baseline_seconds + budget_seconds + 120, log_dir)
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and out.stat().st_size > 1000):
        time.sleep(0.2)  # the writer's start-up (django.setup) and its first operations
    base_start = time.time()
    time.sleep(baseline_seconds)
    started = time.time()
    t0 = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - t0
    ended = time.time()
    process.terminate()
    process.wait()
    base = latencies(out, base_start, started)
    during = latencies(out, started, ended)
    return result, seconds, _percentile(base, 0.99), _percentile(during, 0.99), (len(base), len(during))


def erasure_arm(*, quick: bool, log_dir: Path) -> bool:
    from workflow.services.erasure import client_erase

    tasks, events, background = (200, 4_000, 20_000) if quick else (1_000, 20_000, 200_000)
    who = people()
    history(background)
    client_work(client=who["client"], agency=who["agency"], agent=who["agent"], tasks=tasks, events=events)
    print(f"Erasure: a client with {tasks:,} tasks and {events:,} events, beside {background:,} other events")
    dry, dry_s = _timed(lambda: client_erase(client_id=who["client"].pk, actor=who["admin"], dry_run=True))
    print(f"  dry run: {dry_s:.2f} s, counts {dry['counts']}")
    result, seconds, base_p99, during_p99, samples = under_writers(
        lambda: client_erase(client_id=who["client"].pk, actor=who["admin"]),
        log_dir=log_dir,
        baseline_seconds=5,
        budget_seconds=6,
    )
    ratio = during_p99 / base_p99
    met = seconds <= 5 and ratio <= 1.5
    print(
        f"  erasure: {seconds:.2f} s (target <= 5 s); rows {sum(result['counts'].values()):,}\n"
        f"  writers' p99: {during_p99 * 1000:.1f} ms during vs {base_p99 * 1000:.1f} ms before "
        f"(ratio {ratio:.2f}, target <= 1.5; samples {samples[1]} / {samples[0]}): "
        f"{'met' if met else 'NOT met'}"
    )
    return met


def retention_arm(*, quick: bool, log_dir: Path) -> bool:
    from django.conf import settings
    from django.test.utils import override_settings

    from outbox.models import OutboxEvent
    from outbox.retention import history_trim

    count = 200_000 if quick else 2_000_000

    def trim_all() -> int:
        """Hourly runs back to back: each stops after RETENTION_RUN_SECONDS, the next goes on."""
        total = 0
        while deleted := history_trim(batch=1000):
            total += deleted
        return total

    if not _exists("bench-agent"):
        people()
    print(
        f"\nRetention: {count:,} dispatched events 400 days old (half with a ledger row), retention 30 days, "
        f"duty cycle {settings.RETENTION_DUTY_CYCLE}"
    )
    sizes, rows, indexes = [], [], []
    met = True
    with override_settings(OUTBOX_EVENT_RETENTION_DAYS=30):
        for cycle in (0, 1, 2, 3):
            t0 = time.perf_counter()
            history(count, days_ago=400, ledger=True)
            sizes.append(outbox_size())
            rows.append(OutboxEvent.objects.count())
            indexes.append(index_sizes())
            insert_s = time.perf_counter() - t0
            if cycle == 0:
                deleted, seconds, base_p99, during_p99, samples = under_writers(
                    trim_all, log_dir=log_dir, baseline_seconds=8, budget_seconds=3600
                )
                ratio = during_p99 / base_p99
                met = ratio <= 1.5
                print(
                    f"  first fill: inserted in {insert_s:.0f} s; trimmed {deleted:,} in {seconds:.1f} s "
                    f"({deleted / seconds:,.0f} events/s) while writers ran\n"
                    f"  writers' p99: {during_p99 * 1000:.1f} ms during vs {base_p99 * 1000:.1f} ms before "
                    f"(ratio {ratio:.2f}, target <= 1.5; samples {samples[1]} / {samples[0]}): "
                    f"{'met' if met else 'NOT met'}"
                )
            else:  # no writers to share the machine with: unpaced (only the table's size is measured)
                with override_settings(RETENTION_DUTY_CYCLE=1.0):
                    deleted, seconds = _timed(trim_all)
                print(f"  cycle {cycle}: trimmed {deleted:,} in {seconds:.1f} s (unpaced)")
            autovacuum_passes(log_dir)
    growth = sizes[3] / sizes[1]
    flat = growth <= 1.1
    mb = ", ".join(f"{size / 2**20:,.0f} MB ({n:,} rows)" for size, n in zip(sizes, rows, strict=True))
    print(
        f"  outbox table + indexes after each insert (the first fill, then cycles 1-3): {mb}\n"
        f"  cycle 3 / cycle 1 = {growth:.2f} (target <= 1.1): {'met' if flat else 'NOT met'}; "
        f"cycle 3 / first fill {sizes[3] / sizes[0]:.2f} (the fill went into an empty table; the rows the "
        f"writers added since stay, being recent)"
    )
    for name in sorted(indexes[0], key=lambda name: -indexes[-1][name])[:4]:
        print(f"    {name}: " + ", ".join(f"{each[name] / 2**20:,.0f} MB" for each in indexes))
    return met and flat


def _exists(username: str) -> bool:
    from polaris.accounts.models import User

    return User.objects.filter(username=username).exists()


def _timed(func):
    t0 = time.perf_counter()
    result = func()
    return result, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--writer"]:
        writer_main(argv[1], float(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["erasure", "retention"], action="append")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is required (scripts/devstack.py bench sets it).", file=sys.stderr)
        return 2
    parts = args.only or ["erasure", "retention"]
    logging.disable(logging.WARNING)
    recreate_database(url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(url, BENCH_DATABASE)
    results = []
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        with tempfile.TemporaryDirectory() as tmp:
            if "erasure" in parts:
                results.append(erasure_arm(quick=args.quick, log_dir=Path(tmp)))
            if "retention" in parts:
                results.append(retention_arm(quick=args.quick, log_dir=Path(tmp)))
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(url, BENCH_DATABASE)
    print(f"\nprivacy: {'all targets met' if all(results) else 'some targets NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
