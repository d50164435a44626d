"""Trend reports from rollups beside the same answers from the events, and the rollups' cost on dispatch.

Measured in one run, on a scratch database (``polaris_reports_bench``, dropped at the end):

1. History: N events (10,000,000; ``--quick``: 1,000,000) written with set-based SQL straight into the
   outbox, about 3.4 per task (created, started, completed or cancelled; a tenth left open, a tenth
   breached, four tenths completed with an ``SLAMet``, three tenths completed without an SLA), over a
   year, 2 agencies x 3 service areas x 2 task types; then the rollups built by the rebuild path
   (``reports.rebuild.rollups_rebuild``, the ``reports_rebuild`` command's body).
2. Report queries: the four reports (``reports.selectors``, what the API calls) over random 30-day
   windows in Europe/Berlin, day buckets, half of them filtered by agency: p50 and p99 (target p99
   <= 100 ms). Baseline, same run, same windows: throughput and time in state computed straight from the
   events (grouped SQL over the outbox; time in state joins each step to the task's previous one); the
   ratio of medians (target >= 50x). The two throughput answers are compared row by row.
3. Dispatch cost: rounds of K pending TaskCreated events drained by the real dispatcher in this process,
   with the project's registered handlers, alternately without and with the rollup handler; events/s per
   arm (median of the rounds) and the cost (target <= 10 %).

    DATABASE_URL=... python bench/reports_bench.py [--quick] [--events N] [--keep-db]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_reports_bench"
HISTORY_START = datetime(2025, 12, 1, tzinfo=UTC)
TZ = "Europe/Berlin"
AGENCIES = ["00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"]
CHUNK_TASKS = 250_000

# One row per event of task g (a deterministic pseudo-random life from g); see the module docstring.
HISTORY_SQL = """
WITH t AS (
    SELECT g, md5('task' || g)::uuid AS task_id,
        (ARRAY[%(a1)s::text, %(a2)s::text])[g %% 2 + 1] AS agency,
        (ARRAY['housing', 'health', 'benefits'])[g %% 3 + 1] AS area,
        (ARRAY['intake', 'review'])[(g / 3) %% 2 + 1] AS ttype,
        %(start)s::timestamptz + (g::float8 / %(tasks)s) * interval '365 days' AS created,
        (g * 7919) %% 1000 AS r1, (g * 104729) %% 1000 AS r2, g %% 10 AS fate
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
), steps AS (
    SELECT task_id, agency, area, ttype, 'TaskCreated' AS event_type, 'task' AS aggregate_type,
        task_id AS agg, 1 AS seq, created AS at, NULL AS old_state, 'new' AS new_state FROM t
    UNION ALL
    SELECT task_id, agency, area, ttype, 'TaskStateChanged', 'task', task_id, 2,
        created + r1 * interval '36 second', 'new', 'in_progress' FROM t
    UNION ALL
    SELECT task_id, agency, area, ttype, 'TaskStateChanged', 'task', task_id, 3,
        created + r1 * interval '36 second' + r2 * interval '260 second', 'in_progress',
        CASE WHEN fate = 1 THEN 'cancelled' ELSE 'completed' END FROM t WHERE fate <> 0
    UNION ALL
    SELECT task_id, agency, area, ttype, 'SLABreached', 'sla_record', md5('sla' || g)::uuid, 1,
        created + r1 * interval '36 second' + r2 * interval '130 second', NULL, NULL FROM t WHERE fate = 2
    UNION ALL
    SELECT task_id, agency, area, ttype, 'SLAMet', 'sla_record', md5('sla' || g)::uuid, 1,
        created + r1 * interval '36 second' + r2 * interval '260 second', NULL, NULL
        FROM t WHERE fate BETWEEN 3 AND 6
)
INSERT INTO outbox_outboxevent (id, event_type, aggregate_type, aggregate_id, sequence, occurred_at,
    correlation_id, depth, payload, status, attempts, next_attempt_at, last_error, dispatched_at)
SELECT gen_random_uuid(), event_type, aggregate_type, agg, seq, at, 'bench', 0,
    jsonb_build_object('task_id', task_id, 'agency_id', agency, 'service_area', area, 'task_type', ttype,
        'title', 'Bench task', 'priority', 'normal', 'client_id', 1)
    || CASE WHEN new_state IS NULL THEN '{}'::jsonb
       ELSE jsonb_build_object('old_state', old_state, 'new_state', new_state) END
    || CASE WHEN aggregate_type = 'sla_record' THEN jsonb_build_object('sla_record_id', agg)
       ELSE '{}'::jsonb END,
    'dispatched', 1, at, '', at
FROM steps
"""

DIRECT_THROUGHPUT_SQL = """
SELECT date_trunc('day', occurred_at AT TIME ZONE %(tz)s)::date AS day,
    count(*) FILTER (WHERE event_type = 'TaskCreated'),
    count(*) FILTER (WHERE payload ->> 'new_state' = 'completed' AND event_type = 'TaskStateChanged'),
    count(*) FILTER (WHERE payload ->> 'new_state' = 'cancelled' AND event_type = 'TaskStateChanged')
FROM outbox_outboxevent
WHERE status = 'dispatched' AND occurred_at >= %(start)s AND occurred_at < %(end)s
    AND event_type IN ('TaskCreated', 'TaskStateChanged') {agency}
GROUP BY 1
"""

DIRECT_TIME_IN_STATE_SQL = """
SELECT date_trunc('day', e.occurred_at AT TIME ZONE %(tz)s)::date, p.payload ->> 'new_state',
    count(*), sum(extract(epoch FROM e.occurred_at - p.occurred_at))
FROM outbox_outboxevent e
JOIN LATERAL (
    SELECT payload, occurred_at FROM outbox_outboxevent p
    WHERE p.aggregate_type = 'task' AND p.aggregate_id = e.aggregate_id AND p.sequence < e.sequence
        AND p.event_type IN ('TaskCreated', 'TaskStateChanged')
    ORDER BY p.sequence DESC LIMIT 1
) p ON true
WHERE e.status = 'dispatched' AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
    AND e.event_type = 'TaskStateChanged' {agency}
GROUP BY 1, 2
"""


def _history(events: int) -> int:
    """Write about ``events`` events; returns how many were written."""
    from django.db import connection

    tasks = max(1, events * 10 // 34)  # 3.4 events per task on average
    with connection.cursor() as cursor:
        for first in range(0, tasks, CHUNK_TASKS):
            last = min(tasks, first + CHUNK_TASKS) - 1
            cursor.execute(
                HISTORY_SQL,
                {
                    "a1": AGENCIES[0],
                    "a2": AGENCIES[1],
                    "start": HISTORY_START,
                    "tasks": tasks,
                    "first": first,
                    "last": last,
                },
            )
        cursor.execute("SELECT count(*) FROM outbox_outboxevent")
        return cursor.fetchone()[0]


def _vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE outbox_outboxevent")
        cursor.execute("VACUUM ANALYZE reports_rollup")
        cursor.execute("VACUUM ANALYZE reports_taskfold")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _queries(rounds: int) -> dict:
    from django.db import connection

    from reports.selectors import REPORT_FUNCTIONS, ReportFilters, report_throughput
    from reports.window import window_make

    rng = random.Random(25)
    timings: dict[str, list[float]] = {name: [] for name in REPORT_FUNCTIONS}
    direct: dict[str, list[float]] = {"throughput": [], "time-in-state": []}
    rollup_all: list[float] = []
    mismatches = 0
    for index in range(rounds):
        first = date(2025, 12, 1) + timedelta(days=rng.randrange(0, 330))
        window = window_make(first=first, last=first + timedelta(days=29), tz=TZ)
        agency = AGENCIES[index % 2] if index % 2 else None
        filters = ReportFilters(agency_id=agency)
        for name, func in REPORT_FUNCTIONS.items():
            started = time.perf_counter()
            rows = func(window=window, filters=filters)
            elapsed = time.perf_counter() - started
            timings[name].append(elapsed)
            rollup_all.append(elapsed)
        params = {"tz": TZ, "start": window.start, "end": window.end, "agency": agency}
        condition = "AND payload ->> 'agency_id' = %(agency)s" if agency else ""
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(DIRECT_THROUGHPUT_SQL.format(agency=condition), params)
            answer = {row[0]: row[1:] for row in cursor.fetchall()}
            direct["throughput"].append(time.perf_counter() - started)
            started = time.perf_counter()
            cursor.execute(
                DIRECT_TIME_IN_STATE_SQL.format(agency=condition.replace("payload", "e.payload")), params
            )
            cursor.fetchall()
            direct["time-in-state"].append(time.perf_counter() - started)
        rows = report_throughput(window=window, filters=filters)
        for row in rows:
            day = date.fromisoformat(row["bucket_start"][:10])
            if answer.get(day, (0, 0, 0)) != (row["created"], row["completed"], row["cancelled"]):
                mismatches += 1
    return {"timings": timings, "direct": direct, "all": rollup_all, "mismatches": mismatches}


def _pending_round(count: int, tag: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO outbox_outboxevent (id, event_type, aggregate_type, aggregate_id, sequence,
                occurred_at, correlation_id, depth, payload, status, attempts, next_attempt_at, last_error)
            SELECT gen_random_uuid(), 'TaskCreated', 'task', id, 1, now(), 'bench', 0,
                jsonb_build_object('task_id', id, 'agency_id', %(agency)s::text, 'service_area', 'housing',
                    'task_type', 'intake', 'title', 'Bench task', 'priority', 'normal', 'client_id', 1,
                    'old_state', NULL, 'new_state', 'new', 'transition', 'create'),
                'pending', 0, now(), ''
            FROM (SELECT md5('round' || %(tag)s::text || '-' || g)::uuid AS id
                  FROM generate_series(1, %(count)s::int) g) s
            """,
            {"agency": AGENCIES[tag % 2], "tag": tag, "count": count},
        )


def _dispatch_cost(rounds: int, count: int) -> dict:
    from outbox import registry
    from outbox.dispatcher import outbox_dispatch
    from reports.rollups import HANDLER_NAME

    rollups = registry._handlers[HANDLER_NAME]
    rates: dict[str, list[float]] = {"without": [], "with": []}
    for index in range(rounds * 2):
        arm = "without" if index % 2 == 0 else "with"
        if arm == "without":
            registry.unregister_handler(HANDLER_NAME)
        else:
            registry._handlers[HANDLER_NAME] = rollups
        _pending_round(count, index)
        started = time.perf_counter()
        dispatched = 0
        while (report := outbox_dispatch(budget_seconds=3600)).claimed:
            dispatched += report.dispatched
        rates[arm].append(dispatched / (time.perf_counter() - started))
    registry._handlers[HANDLER_NAME] = rollups
    return {arm: statistics.median(values) for arm, values in rates.items()} | {"rounds": rates}


def run(*, events: int, query_rounds: int, dispatch_rounds: int, dispatch_events: int) -> int:
    from reports.rebuild import rollups_rebuild

    started = time.perf_counter()
    written = _history(events)
    print(f"  history: {written:,} events written in {time.perf_counter() - started:.1f} s (set-based SQL)")
    started = time.perf_counter()
    result = rollups_rebuild()
    print(
        f"  rebuild: {result.events:,} events of {result.tasks:,} tasks -> {len(result.rollups):,} "
        f"rollup rows in {time.perf_counter() - started:.1f} s"
    )
    _vacuum()
    figures = _queries(query_rounds)
    ok = True
    for name, values in figures["timings"].items():
        print(
            f"  {name:15s} from rollups: p50 {statistics.median(values) * 1000:7.2f} ms, "
            f"p99 {_percentile(values, 0.99) * 1000:7.2f} ms ({len(values)} queries)"
        )
    p99 = _percentile(figures["all"], 0.99)
    ok &= p99 <= 0.1
    verdict = "OK" if p99 <= 0.1 else "MISSED"
    print(f"  all report queries: p99 {p99 * 1000:.2f} ms (target <= 100 ms: {verdict})")
    for name, values in figures["direct"].items():
        direct_ms = statistics.median(values) * 1000
        rollup_ms = statistics.median(figures["timings"][name]) * 1000
        ratio = direct_ms / rollup_ms
        ok &= ratio >= 50
        print(
            f"  {name:15s} from the events (baseline): p50 {direct_ms:8.2f} ms, p99 "
            f"{_percentile(values, 0.99) * 1000:8.2f} ms; rollups {ratio:.0f}x faster "
            f"(target >= 50x: {'OK' if ratio >= 50 else 'MISSED'})"
        )
    print(f"  throughput rows differing between the two ways: {figures['mismatches']} (expected 0)")
    ok &= figures["mismatches"] == 0
    cost = _dispatch_cost(dispatch_rounds, dispatch_events)
    share = 1 - cost["with"] / cost["without"]
    ok &= share <= 0.10
    rounds = ", ".join(
        f"{a:.0f}/{b:.0f}" for a, b in zip(cost["rounds"]["without"], cost["rounds"]["with"], strict=True)
    )
    print(
        f"  dispatch of {dispatch_events:,} TaskCreated events, registered handlers without / with the "
        f"rollups: {cost['without']:.0f} / {cost['with']:.0f} events/s (median of {dispatch_rounds} "
        f"alternated rounds: {rounds}); cost {share * 100:.1f} % "
        f"(target <= 10 %: {'OK' if share <= 0.10 else 'MISSED'})"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 history events instead of 10,000,000")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--queries", type=int, default=60, help="random windows (each runs every report)")
    parser.add_argument("--dispatch-rounds", type=int, default=5)
    parser.add_argument("--dispatch-events", type=int, default=None)
    parser.add_argument("--keep-db", action="store_true", help=f"leave {BENCH_DATABASE} behind")
    args = parser.parse_args(argv)
    events = args.events or (1_000_000 if args.quick else 10_000_000)
    dispatch_events = args.dispatch_events or (5_000 if args.quick else 20_000)
    original_url = os.environ.get("DATABASE_URL")
    if not original_url:
        print("DATABASE_URL is not set (use `make bench` or scripts/devstack.py bench).", file=sys.stderr)
        return 2
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "reports-bench-scratch-key-not-secret-0123456789")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("OUTBOX_KICK_ON_COMMIT", "false")
    recreate_database(original_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(original_url, BENCH_DATABASE)
    print(f"Reports benchmark: rollups beside the events ({events:,}-event history), and the dispatch cost")
    try:
        django_setup_and_migrate()
        return run(
            events=events,
            query_rounds=args.queries,
            dispatch_rounds=args.dispatch_rounds,
            dispatch_events=dispatch_events,
        )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(original_url, BENCH_DATABASE)
        os.environ["DATABASE_URL"] = original_url


if __name__ == "__main__":
    sys.exit(main())
