"""Polaris beside what a team would write instead with the common Django packages, measured in one run.

1. Transitions. ``task_transition`` (new → in_progress; its event row and SLA bookkeeping in the same
   transaction) beside the peer (``bench/peerapp``): django-fsm-2 with django-fsm-log's StateLog row,
   ``select_for_update`` in a service, and an outbox row written through the ORM by a ``post_transition``
   receiver. Rounds alternate; each arm runs in a fresh process (django-fsm-log listens to every model, so
   ours runs without it). Target: ours >= 1.5x the peer's rate.
2. Dispatch throughput, handled events/s of one worker process. Ours: the dispatcher draining N pending
   events through the effect-probe handler (ledger row + effect row per event), once with the handler's
   batch form (the effect rows of a batch in one INSERT, as a high-volume handler is written here) and
   once with its per-event form alone (one INSERT per event). The peer: N Celery tasks
   written by django-celery-outbox, published by its relay (``manage.py celery_outbox_relay``, the
   documented defaults) and run by one Celery worker (solo pool) with an idempotent consumer (a unique
   ledger row + the same effect row). For contrast: N tasks sent straight to the broker (what
   ``on_commit(task.delay)`` sends; not durable) and run by the same worker. Rate = effects / the span
   from the first to the last effect (the peer's: its processes start after the enqueue) or, for ours,
   the whole drain from the first claim to the last settle. Target: ours (batch form) >= 20x the
   peer's; the per-event form's ratio is printed beside it.
3. Dispatch latency, commit → effect, at a steady rate of transitions. Ours: a worker + beat, the
   after-commit kick. The peer: its transition plus ``peer.effect.delay()`` in the same transaction
   (relay + worker), and ``transaction.on_commit(peer_effect_direct.delay)`` (worker). Target: our p50
   <= 1/3 of the peer's.

Peers are a bench-only extra (``pip install -e '.[bench]'``); they run with ``bench/peer_settings.py``
on a scratch database (``polaris_peers_bench``, dropped at the end).

    DATABASE_URL=... REDIS_URL=... python bench/peers_bench.py [--quick] [--rounds R] [--keep-db]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

from processes import process_start, process_stop
from scratch import database_url, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("LOG_LEVEL", "WARNING")

BENCH_DATABASE = "polaris_peers_bench"
OURS, PEER = "polaris.settings", "bench.peer_settings"
BIN = Path(sys.executable).parent


# --- helpers shared by the parent and the children -------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _setup(settings_module: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()


def _people(prefix: str):
    from polaris.accounts.services import agency_get_or_create, user_upsert

    agency = agency_get_or_create(name=f"Peers Bench {prefix}")
    agent, _ = user_upsert(username=f"peers-agent-{prefix}", password="x", role="agency", agency=agency)
    client, _ = user_upsert(username=f"peers-client-{prefix}", password="x", role="client", agency=agency)
    return agency, agent, client


def _effect_stats(event_ids: list | None = None) -> dict:
    """Rows, distinct events, duplicates, and the first→last effect span of the effect table."""
    from django.db import connection

    from tests.support.effect_probe import EFFECT_TABLE

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT event_id), "
            f"extract(epoch FROM max(created_at) - min(created_at)) FROM {EFFECT_TABLE}"
        )
        rows, distinct, span = cursor.fetchone()
    return {"rows": rows, "distinct": distinct, "duplicates": rows - distinct, "span": float(span or 0)}


def _machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine so far (every process: workers, relay, Redis, PostgreSQL)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _spawn(args: list[str], *, settings_module: str, log: Path, extra_env: dict | None = None):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    return process_start(args, env, log)


def _worker(kind: str, log_dir: Path, extra_env: dict | None = None):
    """A Celery worker (solo pool, one process) for ``ours`` or ``peer``."""
    if kind == "ours":
        app, queue_args, settings_module = "polaris", [], OURS
    else:
        app, queue_args, settings_module = "bench.peer_celery", ["-Q", "peer-bench"], PEER
    args = [str(BIN / "celery"), "-A", app, "worker", "-P", "solo", "-l", "warning", "--without-gossip"]
    args += ["--without-mingle", "-n", f"{kind}-peers-bench@%h", *queue_args]
    return _spawn(
        args, settings_module=settings_module, log=log_dir / f"{kind}-worker.log", extra_env=extra_env
    )


def _relay(log_dir: Path):
    """django-celery-outbox's relay, as its Quick Start runs it (batch 100, idle 1 s)."""
    return _spawn(
        [sys.executable, "manage.py", "celery_outbox_relay"], settings_module=PEER, log=log_dir / "relay.log"
    )


def _beat(log_dir: Path):
    args = [str(BIN / "celery"), "-A", "polaris", "beat", "-l", "warning", "-s", str(log_dir / "schedule")]
    return _spawn(args, settings_module=OURS, log=log_dir / "beat.log")


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not within {timeout}s")


def _show_logs(log_dir: Path) -> None:
    for log in sorted(log_dir.glob("*.log")):
        print(f"--- {log.name} ---\n{log.read_text()[-4000:]}", file=sys.stderr)


# --- children: each runs in a fresh process with one settings module -------------------------------


def child_transitions(arm: str, count: int) -> dict:
    """Time ``count`` new → in_progress transitions (after a short warm-up) in this process."""
    _setup(OURS if arm == "ours" else PEER)
    agency, agent, client = _people(arm)
    warmup = 50
    if arm == "ours":
        from workflow.services.tasks import task_create, task_transition

        ids = [
            task_create(
                actor=agent,
                title=f"Bench {i}",
                task_type="intake",
                client=client,
                agency=agency,
                assignee=agent,
            ).pk
            for i in range(count + warmup)
        ]

        def move(task_id):
            task_transition(task_id=task_id, target_state="in_progress", actor=agent)
    else:
        from bench.peerapp.models import PeerTask
        from bench.peerapp.services import peer_task_transition

        ids = [
            PeerTask.objects.create(
                title=f"Bench {i}", task_type="intake", client=client, agency=agency, assignee=agent
            ).pk
            for i in range(count + warmup)
        ]

        def move(task_id):
            peer_task_transition(task_id=task_id, target_state="in_progress", actor=agent)

    for task_id in ids[:warmup]:
        move(task_id)
    started = time.perf_counter()
    for task_id in ids[warmup:]:
        move(task_id)
    return {"rate": count / (time.perf_counter() - started)}


def child_drain(arm: str, count: int) -> dict:
    """Ours: the real dispatcher drains ``count`` pending events through the effect-probe handler, in its
    batch form (``arm == "batch"``: one INSERT per batch) or its per-event form alone (one per event)."""
    _setup(OURS)
    from dispatch_bench import _clear_events, _insert_events

    from outbox import registry
    from outbox.dispatcher import outbox_dispatch
    from tests.support import effect_probe

    effect_probe.effect_table_create()
    from django.db import connection

    with connection.cursor() as cursor:  # earlier phases' events are not this measurement's
        cursor.execute("UPDATE outbox_outboxevent SET status = 'dispatched' WHERE status <> 'dispatched'")
    _insert_events(count)
    registry._handlers.clear()  # only the handler under test
    effect_probe.register(batch=arm == "batch")
    cpu_started, started = _machine_cpu_seconds(), time.perf_counter()
    while True:
        report = outbox_dispatch(budget_seconds=3600)
        if not report.claimed:
            break
    # The whole drain, first claim to last settle: a batch's effects share one instant, so the span
    # between the first and the last effect would leave out one batch's worth of work.
    stats = {
        **_effect_stats(),
        "span": time.perf_counter() - started,
        "cpu": _machine_cpu_seconds() - cpu_started,
        "cpu_events": count,
    }
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM outbox_handledevent WHERE handler = %s", [effect_probe.HANDLER_NAME])
    _clear_events()
    return stats


def child_enqueue(mode: str, count: int) -> dict:
    """The peer: ``count`` tasks into django-celery-outbox's table (``outbox``) or straight to Redis."""
    _setup(PEER)
    from django.db import transaction

    from bench.peer_celery import app, peer_effect, peer_effect_direct
    from tests.support import effect_probe

    effect_probe.effect_table_create()
    app.control.purge()
    if mode == "outbox":
        for start in range(0, count, 500):
            with transaction.atomic():
                for _ in range(min(500, count - start)):
                    peer_effect.delay(str(uuid.uuid4()), str(uuid.uuid4()), 1)
    else:
        for _ in range(count):
            peer_effect_direct.delay(str(uuid.uuid4()), str(uuid.uuid4()), 1)
    return {"enqueued": count}


def child_effects() -> dict:
    _setup(PEER)
    return _effect_stats()


def child_latency(arm: str, count: int, rate: float) -> dict:
    """Commit → effect lag of ``count`` transitions at ``rate``/s, with the arm's processes running."""
    _setup(OURS if arm == "ours" else PEER)
    from django.db import connection, transaction

    from tests.support import effect_probe

    effect_probe.effect_table_create()
    agency, agent, client = _people(f"latency-{arm}")
    log_dir = Path(tempfile.mkdtemp(prefix=f"polaris-peers-{arm}-"))
    env = {"OUTBOX_EXTRA_HANDLER_MODULES": "bench.worker_handlers"}
    if arm == "ours":
        from workflow.services.tasks import task_create, task_transition

        ids = [
            task_create(
                actor=agent, title=f"L{i}", task_type="intake", client=client, agency=agency, assignee=agent
            ).pk
            for i in range(count)
        ]
        processes = [_worker("ours", log_dir, env), _beat(log_dir)]

        def step(task_id, stamps):
            committed: list[float] = []
            with transaction.atomic():
                # Registered before the transition's own kick, so it runs first at commit: the commit time.
                transaction.on_commit(lambda: committed.append(time.time()))
                _, event = task_transition(task_id=task_id, target_state="in_progress", actor=agent)
            stamps[event.pk] = committed[0]
    else:
        from bench.peer_celery import app, peer_effect, peer_effect_direct
        from bench.peerapp.models import PeerEvent, PeerTask
        from bench.peerapp.services import peer_task_transition

        app.control.purge()
        ids = [
            PeerTask.objects.create(
                title=f"L{i}", task_type="intake", client=client, agency=agency, assignee=agent
            ).pk
            for i in range(count)
        ]
        processes = [_worker("peer", log_dir)]
        if arm == "peer-outbox":
            processes.append(_relay(log_dir))

        def step(task_id, stamps):
            committed: list[float] = []
            with transaction.atomic():
                transaction.on_commit(lambda: committed.append(time.time()))
                task = peer_task_transition(task_id=task_id, target_state="in_progress", actor=agent)
                event = PeerEvent.objects.get(aggregate_id=task.pk, sequence=task.version)
                args = (str(event.pk), str(uuid.uuid4()), event.sequence)
                if arm == "peer-outbox":
                    peer_effect.delay(*args)  # the relay publishes it after commit
                else:
                    transaction.on_commit(partial(peer_effect_direct.delay, *args))
            stamps[event.pk] = committed[0]

    stamps: dict = {}
    try:
        time.sleep(3)  # let the processes connect before the clock starts
        if arm == "ours":  # the tasks' creation events drain first (dispatch_bench does the same)
            from outbox.models import OutboxEvent

            _wait(
                lambda: not OutboxEvent.objects.filter(status__in=["pending", "processing"]).exists(),
                120,
                "the setup backlog drained",
            )
            effect_probe.effect_table_create()  # empties it: only the timed transitions' effects
        interval, next_at = 1.0 / rate, time.monotonic()
        for task_id in ids:
            next_at += interval
            step(task_id, stamps)
            time.sleep(max(0.0, next_at - time.monotonic()))
        _wait(lambda: _effect_stats()["distinct"] >= len(stamps), 60, f"{arm}: every event's effect")
    except Exception:
        _show_logs(log_dir)
        raise
    finally:
        for process in processes:
            process_stop(process)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id, extract(epoch FROM min(created_at)) FROM {effect_probe.EFFECT_TABLE} "
            "WHERE event_id = ANY(%s) GROUP BY event_id",
            [list(stamps)],
        )
        lags = [float(at) - stamps[event_id] for event_id, at in cursor.fetchall()]
    return {"lags": lags, "duplicates": _effect_stats()["duplicates"]}


CHILDREN = {
    "transitions": lambda a: child_transitions(a.arm, a.count),
    "drain": lambda a: child_drain(a.arm, a.count),
    "enqueue": lambda a: child_enqueue(a.arm, a.count),
    "effects": lambda a: child_effects(),
    "latency": lambda a: child_latency(a.arm, a.count, a.rate),
}


# --- the parent: runs the children in turn and prints the comparison -------------------------------


def _child(
    kind: str, *, arm: str = "", count: int = 0, rate: float = 0.0, settings_module: str = PEER
) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--arm",
        arm,
        "--count",
        str(count),
        "--rate",
        str(rate),
    ]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{kind}/{arm} child failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _peer_drain(mode: str, count: int) -> dict:
    """Enqueue ``count`` peer tasks, then start the worker (and the relay) and wait for every effect."""
    _child("enqueue", arm=mode, count=count)
    log_dir = Path(tempfile.mkdtemp(prefix="polaris-peers-drain-"))
    processes = [_worker("peer", log_dir)]
    if mode == "outbox":
        processes.append(_relay(log_dir))
    import psycopg

    def effects() -> int:
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            return conn.execute("SELECT count(DISTINCT event_id) FROM outbox_effect_probe").fetchone()[0]

    try:
        deadline = time.monotonic() + 900
        first: tuple[int, float] | None = None  # (effects, machine CPU) at the first poll that saw one
        while (done := effects()) < count:  # polled once a second: the poll must not take the worker's CPU
            if first is None and done:
                first = (done, _machine_cpu_seconds())  # from here on the worker and relay are warm
            if time.monotonic() > deadline:
                raise TimeoutError(f"{mode}: {count} effects not within 900 s")
            time.sleep(1)
        first = first or (0, _machine_cpu_seconds())
        cpu = {"cpu": _machine_cpu_seconds() - first[1], "cpu_events": count - first[0]}
        time.sleep(1)  # a late duplicate would land now
        return {**_child("effects"), **cpu}
    except Exception:
        _show_logs(log_dir)
        raise
    finally:
        for process in processes:
            process_stop(process)


def transitions(count: int, rounds: int) -> dict:
    print(f"Transitions: {count} new -> in_progress per arm per round, {rounds} rounds, one connection each")
    ours, peer = [], []
    for index in range(1, rounds + 1):
        ours.append(_child("transitions", arm="ours", count=count, settings_module=OURS)["rate"])
        peer.append(_child("transitions", arm="peer", count=count)["rate"])
        print(
            f"  round {index}: Polaris task_transition {ours[-1]:6.0f}/s | peer django-fsm + fsm-log + "
            f"select_for_update + ORM outbox row {peer[-1]:6.0f}/s | ratio {ours[-1] / peer[-1]:.2f}",
            flush=True,
        )
    best_ours, best_peer = max(ours), max(peer)
    ratio = best_ours / best_peer
    print(
        f"  best rounds: {best_ours:.0f}/s vs {best_peer:.0f}/s, ratio {ratio:.2f} (target >= 1.5): "
        f"{'met' if ratio >= 1.5 else 'NOT met'}"
    )
    return {"ours": best_ours, "peer": best_peer, "ratio": ratio}


def throughput(count: int) -> dict:
    print(
        f"\nDispatch throughput: {count} events, effect = ledger row + effect row committed together.\n"
        "  Polaris: one process running outbox_dispatch (batches of 500, a handler transaction per batch),\n"
        "  the probe handler in its batch form (one INSERT of 500 effect rows) and in its per-event form.\n"
        "  Peer: one Celery worker (solo pool, prefetch 4, acks_late, the peer task in its own transaction)\n"
        "  plus django-celery-outbox's relay (batch 100, idle 1 s), both started after the enqueue.\n"
        "  Rate = effects / first-to-last effect (Polaris: / the whole drain); CPU = the whole machine's\n"
        "  busy CPU (every process, PostgreSQL and Redis included) per event, from the first effect seen\n"
        "  (polled once a second)."
    )
    batch = _child("drain", arm="batch", count=count, settings_module=OURS)
    single = _child("drain", arm="single", count=count, settings_module=OURS)
    outbox = _peer_drain("outbox", count)
    direct = _peer_drain("direct", count)
    rates, cpu_per_event = {}, {}
    for label, stats in (
        ("Polaris dispatcher, batch handler", batch),
        ("Polaris dispatcher, per-event handler", single),
        ("django-celery-outbox relay + worker", outbox),
        ("on_commit(task.delay) worker (not durable)", direct),
    ):
        rate = (stats["distinct"] - 1) / stats["span"] if stats["span"] else float("nan")
        rates[label] = rate
        cpu_ms = 1000 * stats["cpu"] / max(1, stats["cpu_events"])
        cpu_per_event[label] = cpu_ms
        print(
            f"  {label:<44}: {rate:8,.0f} events/s   {cpu_ms:6.3f} CPU-ms/event   "
            f"effects {stats['distinct']:,}, duplicates {stats['duplicates']}",
            flush=True,
        )
        if stats["distinct"] != count:
            print(f"  !! {label}: {stats['distinct']} effects for {count} events")
    batch_rate, single_rate, peer_rate, direct_rate = rates.values()
    ratio = batch_rate / peer_rate
    print(
        f"  ratio Polaris (batch handler) / django-celery-outbox: {ratio:.1f}x (target >= 20x): "
        f"{'met' if ratio >= 20 else 'NOT met'}; per-event handler: {single_rate / peer_rate:.1f}x; "
        f"batch handler / on_commit: {batch_rate / direct_rate:.1f}x"
    )
    batch_cpu, single_cpu, peer_cpu, _ = cpu_per_event.values()
    print(
        f"  machine CPU per event, django-celery-outbox / Polaris: {peer_cpu / batch_cpu:.1f}x batch "
        f"handler, {peer_cpu / single_cpu:.1f}x per-event handler (not a target)"
    )
    return {
        "ours": batch_rate,
        "ours_single": single_rate,
        "peer": peer_rate,
        "direct": direct_rate,
        "ratio": ratio,
    }


def latency(count: int, rate: float) -> dict:
    print(f"\nDispatch latency: {count} transitions at {rate:g}/s per arm, commit -> effect")
    results = {}
    for arm, label, settings_module in (
        ("ours", "Polaris (worker + beat, kick on commit)", OURS),
        ("peer-outbox", "django-celery-outbox (relay + worker)", PEER),
        ("peer-direct", "on_commit(task.delay) (not durable)", PEER),
    ):
        measured = _child("latency", arm=arm, count=count, rate=rate, settings_module=settings_module)
        lags = measured["lags"]
        p50, p99 = _percentile(lags, 0.5) * 1000, _percentile(lags, 0.99) * 1000
        results[arm] = (p50, p99)
        print(
            f"  {label:<40}: p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  (n={len(lags)}, "
            f"duplicates {measured['duplicates']})",
            flush=True,
        )
    ours, peer = results["ours"], results["peer-outbox"]
    print(
        f"  p50 Polaris / django-celery-outbox: {ours[0] / peer[0]:.3f} (target <= 0.333): "
        f"{'met' if ours[0] <= peer[0] / 3 else 'NOT met'}"
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--only", choices=["transitions", "throughput", "latency"], action="append")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--arm", default="", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=10.0, help="transitions per second (latency part)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return 0

    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is required (scripts/devstack.py bench sets it).", file=sys.stderr)
        return 2
    try:
        import django_celery_outbox  # noqa: F401
        import django_fsm_log  # noqa: F401
    except ImportError:
        print("The peers are a bench-only extra: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    recreate_database(url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(url, BENCH_DATABASE)
    chosen = args.only or ["transitions", "throughput", "latency"]
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": PEER},
            check=True,
        )
        if "transitions" in chosen:
            transitions(500 if args.quick else 3000, args.rounds)
        if "throughput" in chosen:
            throughput(2000 if args.quick else 10_000)
        if "latency" in chosen:
            latency(30 if args.quick else 200, args.rate)
    finally:
        if not args.keep_db:
            drop_database(url, BENCH_DATABASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
