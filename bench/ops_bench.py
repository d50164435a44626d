"""What a Prometheus scrape costs as history grows: the database gauges read backlog, not history.

The outbox is also the event history, so it only grows. ``/metrics`` (and the stats API, and the admin
dashboard) must nevertheless stay cheap: the backlog gauges filter on exactly the partial indexes'
predicates (``status IN ('pending', 'processing')``, ``status = 'dead'``), so their cost follows the
backlog. Measured in one run, on a scratch database (``polaris_ops_bench``, dropped at the end):

1. baseline: the outbox backlog gauges with a small history (10,000 dispatched events + the backlog);
2. figure: the same gauges after the history grows to N dispatched events (the same backlog);
3. contrast: the same count written so the planner cannot use the partial index (a full scan);
4. a whole ``/metrics`` rendering (every gauge, tasks per state included) at N events, N/10 tasks.

Targets: figure / baseline <= 2x; a whole scrape < 250 ms.

    DATABASE_URL=... REDIS_URL=... python bench/ops_bench.py [--quick] [--events N] [--keep-db]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_ops_bench"
SMALL_HISTORY = 10_000
BACKLOG = 500  # pending events, plus a few dead ones
DEAD = 20


def _insert_events(*, count: int, status: str, agency_id: str) -> None:
    """``count`` events of distinct aggregates in ``status`` (history: dispatched), spread over a year."""
    from django.db import connection, transaction

    from outbox.models import OutboxEvent

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {OutboxEvent._meta.db_table}
                (id, event_type, aggregate_type, aggregate_id, sequence, occurred_at, correlation_id, depth,
                 payload, status, attempts, next_attempt_at, last_error, dispatched_at)
            SELECT gen_random_uuid(), 'TaskStateChanged', 'task', gen_random_uuid(), 1,
                   now() - (g %% 525600) * interval '1 minute', 'bench', 0,
                   jsonb_build_object('agency_id', %(agency)s::text), %(status)s::text, 0, now(), '',
                   CASE WHEN %(status)s::text = 'dispatched' THEN now() END
              FROM generate_series(1, %(count)s::int) AS g
            """,
            {"count": count, "status": status, "agency": agency_id},
        )


def _insert_tasks(*, count: int, agency, client) -> None:
    from django.db import connection, transaction

    from workflow.models import Task

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {Task._meta.db_table}
                (id, title, description, task_type, service_area, priority, client_id, agency_id,
                 blocked_reason, state, version, created_at, updated_at)
            SELECT gen_random_uuid(), 'Bench task ' || g, '', 'intake', 'housing', 'normal', %(client)s,
                   %(agency)s, '', (ARRAY['new','in_progress','blocked','completed','cancelled'])[1 + g %% 5],
                   1, now(), now()
              FROM generate_series(1, %(count)s::int) AS g
            """,
            {"client": client.pk, "agency": agency.pk, "count": count},
        )


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _median_seconds(func, repeats: int) -> float:
    func()  # warm: plans and pages cached like a steady scrape loop
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _backlog_gauges():
    from ops.stats import outbox_backlog

    backlog = outbox_backlog()
    assert backlog.pending == BACKLOG, backlog
    assert backlog.dead == DEAD, backlog
    return backlog


def _backlog_without_partial_index() -> int:
    """The pending count phrased so no partial index applies (what a naive query would cost)."""
    from django.db import connection

    from outbox.models import OutboxEvent

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), min(occurred_at) FROM {OutboxEvent._meta.db_table} "
            "WHERE status NOT IN ('dispatched', 'dead')"
        )
        return cursor.fetchone()[0]


def _scrape() -> bytes:
    from prometheus_client import generate_latest

    from ops.metrics import scrape_registry

    return generate_latest(scrape_registry())


def run(*, events: int, repeats: int) -> dict[str, float]:
    from polaris.accounts.models import Agency, User

    agency = Agency.objects.create(name="Bench agency", slug="bench-agency")
    client = User.objects.create(username="bench-client", role=User.Role.CLIENT, agency=agency)
    _insert_events(count=BACKLOG, status="pending", agency_id=str(agency.pk))
    _insert_events(count=DEAD, status="dead", agency_id=str(agency.pk))
    _insert_events(count=SMALL_HISTORY, status="dispatched", agency_id=str(agency.pk))
    _analyze()
    small = _median_seconds(_backlog_gauges, repeats)

    print(f"  growing the history to {events:,} dispatched events and {events // 10:,} tasks…", flush=True)
    remaining = events - SMALL_HISTORY
    while remaining > 0:
        chunk = min(remaining, 250_000)
        _insert_events(count=chunk, status="dispatched", agency_id=str(agency.pk))
        remaining -= chunk
    _insert_tasks(count=events // 10, agency=agency, client=client)
    _analyze()
    large = _median_seconds(_backlog_gauges, repeats)
    seqscan = _median_seconds(_backlog_without_partial_index, max(3, repeats // 3))
    scrape = _median_seconds(_scrape, max(3, repeats // 3))
    assert b'active_tasks_total{state="new"}' in _scrape()
    return {"small": small, "large": large, "seqscan": seqscan, "scrape": scrape}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 history events instead of 2,000,000")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=21, help="timed repetitions per figure (median)")
    parser.add_argument("--keep-db", action="store_true", help=f"leave {BENCH_DATABASE} behind")
    args = parser.parse_args(argv)
    events = args.events or (200_000 if args.quick else 2_000_000)
    if events <= SMALL_HISTORY:
        parser.error(f"--events must be more than {SMALL_HISTORY:,}")

    original_url = os.environ.get("DATABASE_URL")
    if not original_url:
        print("DATABASE_URL is not set (use `make bench` or scripts/devstack.py bench).", file=sys.stderr)
        return 2
    os.environ.setdefault("DEBUG", "true")  # no SECRET_KEY is needed for a scratch run
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # measure the collector, not files on disk
    recreate_database(original_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(original_url, BENCH_DATABASE)
    print(f"Operations benchmark: scrape-time gauges over a growing outbox history ({events:,} events)")
    try:
        django_setup_and_migrate()
        figures = run(events=events, repeats=args.repeats)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(original_url, BENCH_DATABASE)
        os.environ["DATABASE_URL"] = original_url

    ratio = figures["large"] / figures["small"]
    small_ms, large_ms = figures["small"] * 1000, figures["large"] * 1000
    print(f"  outbox backlog gauges, {SMALL_HISTORY:,} history events: {small_ms:.2f} ms (baseline)")
    print(f"  outbox backlog gauges, {events:,} history events: {large_ms:.2f} ms")
    print(f"  ratio: {ratio:.2f}x (target <= 2x: {'OK' if ratio <= 2 else 'MISSED'})")
    print(
        f"  contrast, the same count without its partial index at {events:,} events: "
        f"{figures['seqscan'] * 1000:.2f} ms ({figures['seqscan'] / figures['small']:.0f}x the baseline)"
    )
    print(
        f"  whole /metrics rendering ({events // 10:,} tasks, {events:,} events): "
        f"{figures['scrape'] * 1000:.2f} ms "
        f"(target < 250 ms: {'OK' if figures['scrape'] < 0.25 else 'MISSED'})"
    )
    return 0 if ratio <= 2 and figures["scrape"] < 0.25 else 1


if __name__ == "__main__":
    sys.exit(main())
