"""Timed triggers: fire lateness (armed worker vs beat-only), the due-timer claim at two table sizes, and
backtest throughput. One run, on a scratch database (``polaris_timers_bench``, dropped at the end).

1. Fire lateness. N timers (default 1,000; ``--quick`` 200) fall due evenly over 10 s (``--quick`` 5 s),
   each armed as a commit that sets a timer arms it; a real worker (as deployed: prefork, 2 processes;
   ``--pool solo`` for one process) and beat (sweep every 5 s)
   fire them. Lateness = ``fired_at - due_at`` (the ``TimerFired`` event committed). The same again with
   arming off (``TIMER_ARM_ENABLED=false``): beat's sweep alone. Targets: p50 <= 250 ms, p99 <= 1 s,
   and >= 10x better than beat-only's mean.
2. The claim. One firing run (claim 100 due timers with SKIP LOCKED, write their 100 ``TimerFired`` events,
   mark them fired; rolled back after timing) with 10,000 pending timers, then with 1,000,000
   (``--quick``: 100,000). Best of repeats. Target: ratio <= 2. For contrast, the same claim with index
   scans off (what it would cost without the partial index).
3. Backtest. One untimed trigger over 1,000,000 historical events (``--quick``: 200,000) of a realistic
   history (``bench/task_history.py``: task types, service areas, priorities, agencies, free-text
   reasons), so that the facts a predicate reads have many distinct values and grouping cannot hide the
   evaluation. Three arms: the realistic predicate (enumerations and the reason; the target is judged on
   it); the same test reading ``payload["service_area"]`` (that key path fetched as JSON text); and the
   worst case, a history where every event carries its own note so no two events have the same facts.
   Every matched count is checked against the same condition counted in SQL. Target: >= 200,000 events/s
   evaluated. Baseline in the same run: the naive way (ORM instances, ``event_names``, evaluate) over a
   tenth of them.

    DATABASE_URL=... REDIS_URL=... python bench/timers_bench.py [--quick] [--keep-db]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from processes import celery_start, process_stop
from scratch import database_url, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")
os.environ.setdefault("BACKTEST_MAX_SECONDS", "300")
os.environ.setdefault("BACKTEST_MAX_EVENTS", "5000000")

BENCH_DATABASE = "polaris_timers_bench"
CLAIM_BATCH = 100


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _celery(kind: str, args: list[str], env: dict[str, str], log_dir: Path) -> subprocess.Popen:
    return celery_start(kind, args, env, log_dir / f"{kind}.log")


def _source_events(count: int, *, event_type: str = "TaskCreated", start: datetime | None = None) -> None:
    """``count`` already-dispatched events (set-based), aggregate ``bench``, with a task-like payload."""
    from django.db import connection

    from outbox.models import OutboxEvent

    start = start or datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {OutboxEvent._meta.db_table}
              (id, event_type, aggregate_type, aggregate_id, sequence, occurred_at, correlation_id, depth,
               payload, status, attempts, next_attempt_at, last_error, dispatched_at)
            SELECT gen_random_uuid(), %s, 'bench', gen_random_uuid(), 1,
                   %s + (g * interval '1 second') * (86400.0 * 30 / %s), 'bench', 0,
                   jsonb_build_object(
                     'task_id', gen_random_uuid()::text, 'title', 'Task ' || g,
                     'task_type', CASE WHEN g %% 3 = 0 THEN 'intake' ELSE 'assessment' END,
                     'service_area', 'housing', 'priority', 'normal', 'client_id', 1,
                     'agency_id', gen_random_uuid()::text, 'assignee_id', NULL, 'action_plan_id', NULL,
                     'old_state', 'in_progress',
                     'new_state', CASE WHEN g %% 2 = 0 THEN 'completed' ELSE 'blocked' END,
                     'transition', 'complete', 'reason', ''),
                   'dispatched', 1, now(), '', now()
            FROM generate_series(1, %s) AS g
            """,
            [event_type, start, count, count],
        )


def _trigger(name: str, **fields):
    from automation.models import Trigger

    return Trigger.objects.create(name=name, event_type=fields.pop("event_type", "TaskCreated"), **fields)


# --- 1. fire lateness ------------------------------------------------------------------------------


def _lateness_round(
    *, count: int, spread: float, arm: bool, env: dict[str, str], log_dir: Path, pool: str
) -> list[float]:
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from automation.models import TriggerTimer
    from automation.timers import timers_arm
    from outbox.models import OutboxEvent
    from polaris.celery import app

    app.control.purge()
    round_env = {**env, "TIMER_ARM_ENABLED": "true" if arm else "false"}
    worker = _celery(
        "worker",
        [*_POOLS[pool], "-n", f"timers-bench-{arm}@%h", "--without-gossip", "--without-mingle"],
        round_env,
        log_dir,
    )
    beat = _celery("beat", ["-s", str(log_dir / f"schedule-{arm}")], round_env, log_dir)
    try:
        time.sleep(3)  # both up, the worker's start-up arm done
        trigger = _trigger(f"lateness {arm}", wait_minutes=1)
        _source_events(count)
        events = list(
            OutboxEvent.objects.filter(aggregate_type="bench", timers_set__isnull=True).values_list(
                "id", "aggregate_id"
            )[:count]
        )
        first = timezone.now() + timedelta(seconds=2)
        dues = [first + timedelta(seconds=spread * i / count) for i in range(count)]
        TriggerTimer.objects.bulk_create(
            TriggerTimer(trigger=trigger, event_id=e, aggregate_type="bench", aggregate_id=a, due_at=d)
            for (e, a), d in zip(events, dues, strict=True)
        )
        settings.TIMER_ARM_ENABLED = arm
        for due in dues:  # what each commit that set a timer does after it
            timers_arm(due_at=due)
        deadline = time.monotonic() + spread + 30
        while time.monotonic() < deadline:
            if not TriggerTimer.objects.filter(trigger=trigger, state="pending").exists():
                break
            time.sleep(0.2)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT extract(epoch FROM fired_at - due_at) FROM automation_triggertimer"
                " WHERE trigger_id = %s AND state = 'fired'",
                [trigger.pk],
            )
            lateness = [float(row[0]) for row in cursor.fetchall()]
        if len(lateness) != count:
            raise RuntimeError(f"only {len(lateness)} of {count} timers fired (arm={arm})")
        return lateness
    finally:
        process_stop(worker)
        process_stop(beat)


# The deployed worker (compose.yaml, scripts/devstack.py): prefork, two processes. ``solo`` for contrast.
_POOLS = {"prefork": ["-P", "prefork", "--concurrency", "2"], "solo": ["-P", "solo"]}


def lateness(*, count: int, spread: float, pool: str = "prefork") -> dict[str, list[float]]:
    env = {**os.environ, "TIMER_SWEEP_INTERVAL_SECONDS": "5", "PYTHONUNBUFFERED": "1"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp)
        try:
            for label, arm in (("armed worker", True), ("beat-only", False)):
                results[label] = _lateness_round(
                    count=count, spread=spread, arm=arm, env=env, log_dir=log_dir, pool=pool
                )
        except Exception:
            for name in ("worker", "beat"):
                print(f"--- {name} log ---\n{(log_dir / f'{name}.log').read_text()[-4000:]}", file=sys.stderr)
            raise
    for label, values in results.items():
        print(
            f"  {label:<12}: p50 {_percentile(values, 0.5) * 1000:>7.1f} ms  p99 "
            f"{_percentile(values, 0.99) * 1000:>7.1f} ms  mean {statistics.fmean(values) * 1000:>7.1f} ms"
            f"  max {max(values) * 1000:.0f} ms  (n={len(values)})",
            flush=True,
        )
    return results


# --- 2. the claim ----------------------------------------------------------------------------------


def _grow_pending(total: int) -> None:
    """Pending timers due tomorrow or later, set-based: triggers x source events (unique pairs)."""
    from django.db import connection

    from automation.models import Trigger, TriggerTimer

    have = TriggerTimer.objects.filter(state="pending").count()
    missing = total - have
    if missing <= 0:
        return
    per_trigger = 1000
    triggers = -(-missing // per_trigger)
    _source_events(per_trigger, event_type="TaskAssigned")
    first = Trigger.objects.count()
    Trigger.objects.bulk_create(
        Trigger(name=f"claim {first + i}", event_type="TaskCreated", wait_minutes=60) for i in range(triggers)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {TriggerTimer._meta.db_table}
              (id, trigger_id, trigger_version, event_id, aggregate_type, aggregate_id, unless, due_at, state,
               created_at)
            SELECT gen_random_uuid(), t.id, 1, e.id, 'bench', e.aggregate_id, '[]'::jsonb,
                   now() + interval '1 day' + random() * interval '30 days', 'pending', now()
            FROM (SELECT id FROM automation_trigger WHERE name LIKE 'claim %%' ORDER BY id DESC LIMIT %s) t
            CROSS JOIN (SELECT id, aggregate_id FROM outbox_outboxevent WHERE event_type = 'TaskAssigned'
                        ORDER BY id LIMIT %s) e
            LIMIT %s
            """,
            [triggers, per_trigger, missing],
        )
        cursor.execute(f"VACUUM ANALYZE {TriggerTimer._meta.db_table}")


def _due_batch() -> None:
    """CLAIM_BATCH timers due now (on their own trigger, so pairs stay unique)."""
    from django.utils import timezone

    from automation.models import TriggerTimer
    from outbox.models import OutboxEvent

    trigger = _trigger(f"due {time.monotonic_ns()}", wait_minutes=1)
    _source_events(CLAIM_BATCH, event_type="TaskUnassigned")
    events = OutboxEvent.objects.filter(event_type="TaskUnassigned", timers_set__isnull=True)[:CLAIM_BATCH]
    TriggerTimer.objects.bulk_create(
        TriggerTimer(
            trigger=trigger,
            event=e,
            aggregate_type="bench",
            aggregate_id=e.aggregate_id,
            due_at=timezone.now() - timedelta(seconds=1),
        )
        for e in events
    )


def _time_claim(repeats: int, *, no_index: bool = False) -> float:
    from django.db import connection, transaction

    from automation.timers import timers_fire_due

    best = float("inf")
    for _ in range(repeats):
        with transaction.atomic():
            if no_index:
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off")
            started = time.perf_counter()
            fired = timers_fire_due(limit=CLAIM_BATCH)
            elapsed = time.perf_counter() - started
            transaction.set_rollback(True)  # the same due rows again next time
        assert fired == CLAIM_BATCH, fired
        best = min(best, elapsed)
    return best


def claim(*, small: int, large: int) -> tuple[float, float]:
    _due_batch()
    _grow_pending(small)
    small_s = _time_claim(15)
    print(
        f"  {small:>9,} pending: {small_s * 1000:7.2f} ms per claim+fire of {CLAIM_BATCH} (best of 15)",
        flush=True,
    )
    _grow_pending(large)
    large_s = _time_claim(15)
    print(
        f"  {large:>9,} pending: {large_s * 1000:7.2f} ms per claim+fire of {CLAIM_BATCH} (best of 15)",
        flush=True,
    )
    no_index = _time_claim(3, no_index=True)
    print(f"  {large:>9,} pending, index scans off (contrast): {no_index * 1000:7.1f} ms", flush=True)
    return small_s, large_s


# --- 3. backtest -----------------------------------------------------------------------------------

# What a real trigger reads: enumerations and the reason an agent typed ("high-priority housing, health
# or legal work blocked for a reason other than the client"). Beside each predicate, the same condition in
# SQL: the matched count is checked against it, a hand count independent of the predicate engine.
_REASON_SQL = "lower(payload ->> 'reason') NOT LIKE 'waiting for client%%'"
REALISTIC = (
    'new_state == "blocked" and priority in ("high", "urgent") and service_area in ("housing", "health",'
    ' "legal") and task_type != "follow-up" and not startswith(lower(reason), "waiting for client")'
)
REALISTIC_SQL = (
    "payload ->> 'new_state' = 'blocked' AND payload ->> 'priority' IN ('high', 'urgent')"
    " AND payload ->> 'service_area' IN ('housing', 'health', 'legal')"
    f" AND payload ->> 'task_type' <> 'follow-up' AND {_REASON_SQL}"
)
REALISTIC_NAMES = ("new_state", "priority", "service_area", "task_type", "reason")
# The same test reading one fact through payload[...]: the backtest fetches that key path as JSON text.
WHOLE_PAYLOAD = REALISTIC.replace("service_area in", 'payload["service_area"] in')
# Over a history where every event carries its own note, so no two events have the same facts.
WORST = 'new_state == "blocked" and not startswith(lower(reason), "waiting for client")'
WORST_SQL = f"payload ->> 'new_state' = 'blocked' AND {_REASON_SQL}"


def _window_sql(since: datetime, until: datetime) -> tuple[str, list]:
    where = "event_type = 'TaskStateChanged' AND occurred_at >= %s AND occurred_at < %s"
    return f"FROM outbox_outboxevent WHERE {where}", [since, until]


def _hand_count(condition: str, since: datetime, until: datetime) -> int:
    from django.db import connection

    source, params = _window_sql(since, until)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) {source} AND {condition}", params)
        return cursor.fetchone()[0]


def _cardinality(names: tuple[str, ...], since: datetime, until: datetime) -> tuple[int, int]:
    """Distinct fact tuples the predicate reads, and distinct (UTC day, facts) groups."""
    from django.db import connection

    source, params = _window_sql(since, until)
    facts = ", ".join(f"payload ->> '{name}'" for name in names)
    day = "(occurred_at AT TIME ZONE 'UTC')::date"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM (SELECT DISTINCT {facts} {source}) f),"
            f" (SELECT count(*) FROM (SELECT DISTINCT {day}, {facts} {source}) g)",
            params * 2,
        )
        return cursor.fetchone()


def _backtest_rate(name: str, predicate: str, condition: str, since: datetime, until: datetime, events: int):
    """Best of three backtests of an untimed trigger; checks what it counted against the hand count."""
    from automation.backtest import trigger_backtest

    trigger = _trigger(
        name,
        event_type="TaskStateChanged",
        predicate=predicate,
        actions=[{"type": "emit_alert", "params": {"message": "blocked: $title"}}],
    )
    rates = []
    for _ in range(3):
        answer = trigger_backtest(trigger=trigger, since=since, until=until)
        rates.append(answer["evaluated"] / (answer["elapsed_ms"] / 1000))
    expected = _hand_count(condition, since, until)
    assert answer["evaluated"] == events, answer
    assert not answer["truncated"], answer
    assert answer["matched"] == expected, (answer["matched"], expected)
    runs = ", ".join(f"{r:,.0f}" for r in rates)
    return max(rates), f"{answer['matched']:,} matched (= the SQL hand count); runs {runs}"


def _baseline(predicate: str, since: datetime, until: datetime, count: int) -> float:
    """The naive way: ORM instances, ``event_names``, evaluate each event."""
    from automation.engine import event_names
    from automation.predicates import predicate_compile
    from outbox.models import OutboxEvent

    compiled = predicate_compile(predicate)
    qs = OutboxEvent.objects.filter(
        event_type="TaskStateChanged", occurred_at__gte=since, occurred_at__lt=until
    )
    seen = 0
    started = time.perf_counter()
    for event in qs[:count].iterator(chunk_size=2000):
        compiled.evaluate(event_names(event, with_actor_role=False))
        seen += 1
    return seen / (time.perf_counter() - started)


def backtest(*, events: int) -> dict[str, float]:
    """The three histories/predicates and the baseline; returns each rate by arm."""
    from task_history import task_history_delete, task_history_insert

    start = datetime(2026, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    until = task_history_insert(events, start=start)
    tuples, groups = _cardinality(REALISTIC_NAMES, start, until)
    print(
        f"  history: {events:,} TaskStateChanged events of {-(-events // 3):,} tasks over 31 days"
        f" (13 task types, 8 service areas, 4 priorities, 250 agencies, 120,000 clients;"
        f" free-text reasons on block/cancel),"
        f" written in {time.perf_counter() - began:.1f} s",
        flush=True,
    )
    print(
        f"  realistic: `{REALISTIC}`\n    reads {', '.join(REALISTIC_NAMES)}: {tuples:,} distinct fact tuples"
        f" ({tuples / events:.0%} of events), {groups:,} (day, facts) groups",
        flush=True,
    )
    rates = {}
    rates["realistic"], detail = _backtest_rate("realistic", REALISTIC, REALISTIC_SQL, start, until, events)
    print(f"    -> {rates['realistic']:,.0f} events/s; {detail}", flush=True)
    rates["whole payload"], detail = _backtest_rate(
        "whole payload", WHOLE_PAYLOAD, REALISTIC_SQL, start, until, events
    )
    print(
        f'  whole payload: the same test reading payload["service_area"] (that key path as JSON text)\n'
        f"    -> {rates['whole payload']:,.0f} events/s; {detail}",
        flush=True,
    )
    naive_n = events // 10
    rates["baseline"] = _baseline(REALISTIC, start, until, naive_n)
    print(
        f"  baseline: ORM instances + event_names + evaluate, realistic predicate, {naive_n:,} events\n"
        f"    -> {rates['baseline']:,.0f} events/s",
        flush=True,
    )
    task_history_delete()
    until = task_history_insert(events, start=start, reason_everywhere=True)
    tuples, groups = _cardinality(("new_state", "reason"), start, until)
    print(
        f"  worst case: the same history with its own note on every event; `{WORST}`\n"
        f"    reads new_state, reason: {tuples:,} distinct fact tuples ({tuples / events:.0%} of events)",
        flush=True,
    )
    rates["worst case"], detail = _backtest_rate("worst case", WORST, WORST_SQL, start, until, events)
    print(f"    -> {rates['worst case']:,.0f} events/s; {detail}", flush=True)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--only", choices=["lateness", "claim", "backtest"], action="append")
    parser.add_argument("--pool", choices=sorted(_POOLS), default="prefork", help="the worker's pool")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is required (scripts/devstack.py bench sets it).", file=sys.stderr)
        return 2
    parts = args.only or ["lateness", "claim", "backtest"]
    logging.disable(logging.WARNING)
    recreate_database(url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(url, BENCH_DATABASE)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        if "lateness" in parts:
            count, spread = (200, 5.0) if args.quick else (1000, 10.0)
            print(
                f"Fire lateness: {count} timers due over {spread:g} s; worker {' '.join(_POOLS[args.pool])}"
                " + beat (sweep 5 s); lateness = due -> the fired mark (TimerFired committed)"
            )
            results = lateness(count=count, spread=spread, pool=args.pool)
            armed, beat_only = results["armed worker"], results["beat-only"]
            ratio = statistics.fmean(beat_only) / statistics.fmean(armed)
            met = _percentile(armed, 0.5) <= 0.25 and _percentile(armed, 0.99) <= 1.0 and ratio >= 10
            print(
                f"  beat-only mean / armed mean: {ratio:,.0f}x; targets (p50 <= 250 ms, p99 <= 1 s, >= 10x): "
                f"{'met' if met else 'NOT met'}"
            )
        if "claim" in parts:
            large = 100_000 if args.quick else 1_000_000
            print(f"\nDue-timer claim: {CLAIM_BATCH} due among 10,000 vs {large:,} pending")
            small_s, large_s = claim(small=10_000, large=large)
            ratio = large_s / small_s
            print(f"  ratio {ratio:.2f}; target <= 2: {'met' if ratio <= 2 else 'NOT met'}")
        if "backtest" in parts:
            events = 200_000 if args.quick else 1_000_000
            print(f"\nBacktest: one untimed trigger over {events:,} historical events")
            rates = backtest(events=events)
            verdicts = {arm: "met" if rate >= 200_000 else "NOT met" for arm, rate in rates.items()}
            real, worst, whole = rates["realistic"], rates["worst case"], rates["whole payload"]
            print(
                f"  target >= 200,000 events/s, judged on the realistic history: {real:,.0f} events/s"
                f" ({real / rates['baseline']:.1f}x the baseline): {verdicts['realistic']}"
            )
            print(
                f"  beside it: worst case {worst:,.0f} ({verdicts['worst case']}), whole payload {whole:,.0f}"
                f" ({verdicts['whole payload']}), baseline {rates['baseline']:,.0f}"
            )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(url, BENCH_DATABASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
