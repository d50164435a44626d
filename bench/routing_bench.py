"""Routing and workload: a routing decision among 500 workers and 100,000 open tasks beside the naive
per-worker ORM counts, and an agency's workload (200 workers) over 1,000,000 tasks.

Measured in one run, on a scratch database (``polaris_routing_bench``, dropped at the end):

1. Agency R: 500 agents (some with skills, some away with a delegate), 2,000 clients, N open tasks
   (default 100,000; ``--quick`` 20,000) spread over the agents, counters built set-based, and one
   ``least_loaded`` rule (skills, client affinity). For 300 unassigned tasks: ``decision_for`` (what
   ``task_route`` reads and ranks: the matching rule, the workers with their counters, the client's worker)
   — p50/p99; and the whole route (lock, choose, assign, event), rolled back. Beside it, the naive way: the
   same ranking from per-worker ORM counts (``count()`` and a weighted ``Sum`` per worker), 20 samples.
   Targets: p99 <= 5 ms and >= 10x faster.
2. Agency W: 200 agents, M tasks (default 1,000,000; ``--quick`` 100,000), 10 % of them open (with SLA
   records; some overdue) and the rest completed or cancelled: ``workload()`` p50/p99 over 20 reads, beside
   per-worker ORM queries for the same figures. Target: <= 100 ms.

Rows are inserted set-based (``INSERT ... SELECT generate_series``).

    DATABASE_URL=... REDIS_URL=... python bench/routing_bench.py [--quick] [--keep-db]
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

BENCH_DATABASE = "polaris_routing_bench"
DECISIONS = 300
NAIVE_SAMPLES = 20
WORKLOAD_READS = 20


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _people(slug: str, workers: int, clients: int):
    from polaris.accounts.models import Agency, User

    agency = Agency.objects.create(name=f"Bench {slug}", slug=f"bench-{slug}")
    User.objects.bulk_create(
        [User(username=f"{slug}-agent-{n}", role=User.Role.AGENCY, agency=agency) for n in range(workers)]
    )
    User.objects.bulk_create(
        [User(username=f"{slug}-client-{n}", role=User.Role.CLIENT, agency=agency) for n in range(clients)]
    )
    agents = list(
        User.objects.filter(agency=agency, role=User.Role.AGENCY).order_by("pk").values_list("pk", flat=True)
    )
    client_ids = list(
        User.objects.filter(agency=agency, role=User.Role.CLIENT).order_by("pk").values_list("pk", flat=True)
    )
    return agency, agents, client_ids


def _insert_tasks(*, agency, agents, clients, count: int, open_share: float, unassigned: int = 0) -> None:
    """``count`` tasks: assignee, client and priority spread over the lists; the first ``open_share`` of
    them open (a tenth of those overdue), the rest completed or cancelled; ``unassigned`` more, new and
    without an assignee (the tasks the decisions are measured on)."""
    from django.db import connection, transaction

    from workflow.models import Task

    table = Task._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table}
                (id, title, description, task_type, service_area, priority, client_id, agency_id, assignee_id,
                 blocked_reason, state, version, created_at, updated_at, due_at)
            SELECT gen_random_uuid(), 'Bench task ' || g, '', 'intake',
                   (ARRAY['housing', 'benefits', 'legal', 'health'])[1 + g %% 4],
                   (ARRAY['low', 'normal', 'normal', 'high', 'urgent'])[1 + g %% 5],
                   (%(clients)s::bigint[])[1 + g %% cardinality(%(clients)s::bigint[])],
                   %(agency)s,
                   (%(agents)s::bigint[])[1 + (g::bigint * 7919) %% cardinality(%(agents)s::bigint[])],
                   '',
                   CASE WHEN g <= %(open)s THEN (ARRAY['new', 'in_progress', 'blocked'])[1 + g %% 3]
                        WHEN g %% 2 = 0 THEN 'completed' ELSE 'cancelled' END,
                   1, now() - g * interval '7 seconds', now(),
                   CASE WHEN g %% 10 = 0 THEN now() - interval '1 hour' ELSE now() + interval '3 days' END
              FROM generate_series(1, %(count)s) AS g
            """,
            {
                "clients": clients,
                "agents": agents,
                "agency": agency.pk,
                "open": int(count * open_share),
                "count": count,
            },
        )
        if unassigned:
            cursor.execute(
                f"""
                INSERT INTO {table}
                    (id, title, description, task_type, service_area, priority, client_id, agency_id,
                     blocked_reason, state, version, created_at, updated_at)
                SELECT gen_random_uuid(), 'Unrouted ' || g, '', 'intake', 'housing', 'normal',
                       (%(clients)s::bigint[])[1 + g %% cardinality(%(clients)s::bigint[])], %(agency)s, '',
                       'new', 1, now(), now()
                  FROM generate_series(1, %(count)s) AS g
                """,
                {"clients": clients, "agency": agency.pk, "count": unassigned},
            )
        cursor.execute(f"ANALYZE {table}")


def _counters_build(agency) -> None:
    """The load counters, set-based (what the services keep in step one write at a time)."""
    from django.db import connection

    from routing.decide import OPEN_STATES, PRIORITY_WEIGHTS
    from routing.models import WorkerLoad
    from workflow.models import Task

    weights = " ".join(f"WHEN '{p}' THEN {w}" for p, w in PRIORITY_WEIGHTS.items())
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {WorkerLoad._meta.db_table} (user_id, agency_id, open_tasks, weighted_load)
            SELECT assignee_id, agency_id, count(*), sum(CASE priority {weights} ELSE 2 END)
              FROM {Task._meta.db_table}
             WHERE agency_id = %s AND assignee_id IS NOT NULL AND state = ANY(%s)
             GROUP BY assignee_id, agency_id
            """,
            [agency.pk, list(OPEN_STATES)],
        )
        cursor.execute(f"ANALYZE {WorkerLoad._meta.db_table}")


def _sla_records_for_open_tasks(agency) -> None:
    from django.db import connection

    from sla.models import SLAConfig, SLARecord
    from workflow.models import Task

    config = SLAConfig.objects.filter(task_type="intake", active=True).first()
    if config is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {SLARecord._meta.db_table}
                (id, task_id, config_id, target_minutes, calendar_snapshot, warning_percentages,
                 pause_states, status, started_at, due_at, next_warning_at, paused_seconds, warnings_sent,
                 version, measurement)
            SELECT gen_random_uuid(), t.id, %(config)s, 60, NULL, '[75]', '["blocked"]', 'running',
                   now() - interval '50 minutes', now() + interval '10 minutes', NULL, 0, '[75]', 1, 1
              FROM {Task._meta.db_table} AS t
             WHERE t.agency_id = %(agency)s AND t.state IN ('new', 'in_progress', 'blocked')
            """,
            {"config": config.pk, "agency": agency.pk},
        )
        cursor.execute(f"ANALYZE {SLARecord._meta.db_table}")


def _naive_rank(task, rule, agents) -> list:
    """The same least-loaded ranking from per-worker ORM counts (what the counters replace)."""
    from django.db.models import Sum

    from routing.decide import OPEN_STATES
    from routing.load import _weight_case
    from workflow.models import Task

    loads = []
    for worker_id in agents:
        mine = Task.objects.filter(assignee_id=worker_id, state__in=OPEN_STATES)
        open_tasks = mine.count()
        weighted = mine.aggregate(w=Sum(_weight_case()))["w"] or 0
        loads.append((weighted, open_tasks, worker_id))
    return sorted(loads)


def routing_part(*, open_tasks: int) -> dict:
    from django.db import transaction

    from routing.models import RoutingRule, WorkerProfile
    from routing.selectors import decision_for
    from routing.services.route import task_route
    from workflow.models import Task

    agency, agents, clients = _people("r", 500, 2000)
    print(f"seeding {open_tasks:,} open tasks over {len(agents)} workers ...", flush=True)
    started = time.perf_counter()
    _insert_tasks(
        agency=agency, agents=agents, clients=clients, count=open_tasks, open_share=1.0, unassigned=DECISIONS
    )
    _counters_build(agency)
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
    WorkerProfile.objects.bulk_create(
        [WorkerProfile(user_id=w, service_areas=["housing", "benefits"]) for w in agents[::5]]
        + [WorkerProfile(user_id=w, away=True, delegate_id=agents[0]) for w in agents[1::25]]
    )
    rule = RoutingRule.objects.create(agency=agency, name="Everything", strategy="least_loaded")
    tasks = list(Task.objects.filter(agency=agency, assignee__isnull=True).order_by("pk"))
    for task in tasks[:20]:
        decision_for(task)  # warm up
    fast = []
    for task in tasks:
        begun = time.perf_counter()
        _, decision, _ = decision_for(task)
        fast.append(time.perf_counter() - begun)
        assert decision.chosen is not None
    routes = []
    for task in tasks[:100]:
        with transaction.atomic():
            begun = time.perf_counter()
            outcome = task_route(task_id=task.pk, actor=None)
            routes.append(time.perf_counter() - begun)
            assert outcome.assigned
            transaction.set_rollback(True)
    naive = []
    for task in tasks[:NAIVE_SAMPLES]:
        begun = time.perf_counter()
        _naive_rank(task, rule, agents)
        naive.append(time.perf_counter() - begun)
    return {"fast": fast, "routes": routes, "naive": naive, "floor": _round_trip()}


def _round_trip() -> float:
    """The machine's floor: the median of 200 ``SELECT 1`` round trips (a decision makes four queries)."""
    from django.db import connection

    samples = []
    with connection.cursor() as cursor:
        for _ in range(200):
            begun = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            samples.append(time.perf_counter() - begun)
    return statistics.median(samples)


def _naive_workload(agency, agents) -> list:
    from django.db.models import Min
    from django.utils import timezone

    from routing.decide import OPEN_STATES
    from workflow import extensions
    from workflow.models import Task

    now = timezone.now()
    rows = []
    for worker_id in agents:
        mine = Task.objects.filter(assignee_id=worker_id, state__in=OPEN_STATES)
        rows.append(
            (
                mine.count(),
                mine.filter(due_at__lt=now).count(),
                extensions.task_filters["sla_status"](mine, "at_risk").count(),
                mine.aggregate(o=Min("created_at"))["o"],
            )
        )
    return rows


def workload_part(*, tasks: int) -> dict:
    from routing.workload import workload

    agency, agents, clients = _people("w", 200, 2000)
    print(f"seeding {tasks:,} tasks (10 % open) over {len(agents)} workers ...", flush=True)
    started = time.perf_counter()
    _insert_tasks(agency=agency, agents=agents, clients=clients, count=tasks, open_share=0.1)
    _counters_build(agency)
    _sla_records_for_open_tasks(agency)
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
    for _ in range(3):
        workload(agency=agency)
    samples = []
    for _ in range(WORKLOAD_READS):
        begun = time.perf_counter()
        data = workload(agency=agency)
        samples.append(time.perf_counter() - begun)
    assert len(data["workers"]) == 200
    begun = time.perf_counter()
    _naive_workload(agency, agents)
    naive = time.perf_counter() - begun
    return {"samples": samples, "naive": naive, "open": sum(w["open"] for w in data["workers"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 open tasks / 100,000 tasks")
    parser.add_argument("--keep-db", action="store_true", help=f"leave {BENCH_DATABASE} behind")
    args = parser.parse_args(argv)
    open_tasks = 20_000 if args.quick else 100_000
    all_tasks = 100_000 if args.quick else 1_000_000

    original_url = os.environ.get("DATABASE_URL")
    if not original_url:
        print("DATABASE_URL is not set (use `make bench` or scripts/devstack.py bench).", file=sys.stderr)
        return 2
    os.environ.setdefault("DEBUG", "true")
    recreate_database(original_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(original_url, BENCH_DATABASE)
    try:
        django_setup_and_migrate()
        routing = routing_part(open_tasks=open_tasks)
        load = workload_part(tasks=all_tasks)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(original_url, BENCH_DATABASE)
        os.environ["DATABASE_URL"] = original_url

    ms = 1000
    fast_p99, naive_p99 = _p(routing["fast"], 0.99), _p(routing["naive"], 0.99)
    fast_p50, naive_p50 = statistics.median(routing["fast"]), statistics.median(routing["naive"])
    ratio = naive_p99 / fast_p99
    print()
    print(f"Routing decision, 500 workers, {open_tasks:,} open tasks ({len(routing['fast'])} decisions)")
    print(f"  machine floor: SELECT 1 round trip p50 {routing['floor'] * ms:.3f} ms")
    print(
        f"  counters (decision_for): p50 {fast_p50 * ms:.2f} ms, p99 {fast_p99 * ms:.2f} ms "
        f"(target p99 <= 5 ms: {'OK' if fast_p99 <= 0.005 else 'MISSED'})"
    )
    print(
        f"  whole route (lock, choose, assign + event, rolled back; {len(routing['routes'])}): "
        f"p50 {statistics.median(routing['routes']) * ms:.2f} ms, "
        f"p99 {_p(routing['routes'], 0.99) * ms:.2f} ms"
    )
    print(
        f"  naive per-worker ORM counts ({len(routing['naive'])} samples): p50 {naive_p50 * ms:.1f} ms, "
        f"p99 {naive_p99 * ms:.1f} ms"
    )
    print(
        f"  ratio (naive p99 / counters p99): {ratio:.0f}x "
        f"(target >= 10x: {'OK' if ratio >= 10 else 'MISSED'})"
    )
    w99, w50 = _p(load["samples"], 0.99), statistics.median(load["samples"])
    print(f"Workload, 200 workers, {all_tasks:,} tasks ({load['open']:,} open, with SLA records)")
    print(
        f"  workload(): p50 {w50 * ms:.1f} ms, p99 {w99 * ms:.1f} ms over {WORKLOAD_READS} reads "
        f"(target <= 100 ms: {'OK' if w99 <= 0.1 else 'MISSED'})"
    )
    print(
        f"  naive per-worker ORM queries, one read: {load['naive'] * ms:.0f} ms ({load['naive'] / w50:.0f}x)"
    )
    return 0 if fast_p99 <= 0.005 and ratio >= 10 and w99 <= 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
