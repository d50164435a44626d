"""Integrations: the event feed's read rate and long-poll latency, and ordered webhook deliveries.

Measured in one run, on a scratch database (``polaris_integrations_bench``, dropped at the end):

1. Feed read. A history of 1,000,000 events (``--quick``: 100,000), written as one transaction, is
   positioned in bounded feed rounds (as after the upgrade that added the feed) while a writer keeps
   committing (its commit times show it never waits), then a consumer follows the cursor through
   ``GET /api/workflow/events?limit=1000`` (the whole stack in process: auth, the view, the JSON
   renderer) to the end. Baseline, same run: a keyset read
   of the same rows straight through psycopg (no Django, no JSON) — the floor. Target >= 20,000 ev/s.
2. Commit -> consumer latency. A writer commits one event at a time at random intervals; a long-poll
   consumer (``wait=``, LISTEN/NOTIFY) and a 1 s polling consumer follow the feed side by side.
   Target: long-poll p50 at least 10x lower.
3. Webhooks. One real Celery worker process (solo pool) delivers to a local receiver on 127.0.0.1
   (the bench queues each delivery as the webhook action does; the task claims, POSTs signed, records
   the attempt, settles, wakes the next of an ordered aggregate). The receiver answers 500 to the first
   attempt of one delivery in ten (the same ones in both arms), retried on a short schedule
   (``WEBHOOK_RETRY_SCHEDULE_SECONDS``, first retry ``--retry-seconds``, 1 s), so on the ordered endpoint
   a failing delivery really holds back its aggregate's later ones. Same events (200 aggregates x 10),
   unordered and ordered alternated, two rounds, best of each. Checked: every event accepted exactly
   once; the ordered arm in sequence order per aggregate (the unordered one's disorder is printed).
   Target: ordered deliveries/s >= 50 % of unordered.

    DATABASE_URL=... REDIS_URL=... python bench/integrations_bench.py [--quick] [--keep-db] [--only webhooks]
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from processes import celery_start, process_stop
from scratch import database_url, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ["WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
os.environ["OUTBOX_KICK_ON_COMMIT"] = "false"

BENCH_DATABASE = "polaris_integrations_bench"

HISTORY_SQL = """
INSERT INTO outbox_outboxevent (id, event_type, aggregate_type, aggregate_id, sequence, occurred_at,
    correlation_id, depth, payload, status, attempts, next_attempt_at, last_error, dispatched_at)
SELECT gen_random_uuid(), 'TaskStateChanged', 'task',
       ('00000000-0000-0000-0000-' || lpad(to_hex(n %% 50000), 12, '0'))::uuid, n / 50000 + 1,
       now() - make_interval(secs => %(count)s - n), 'bench', 0,
       jsonb_build_object('task_id', 'x', 'title', 'Initial intake', 'task_type', 'intake',
           'service_area', 'housing', 'priority', 'normal', 'client_id', 42, 'agency_id', 'a',
           'old_state', 'new', 'new_state', 'in_progress', 'transition', 'start', 'reason', ''),
       'dispatched', 1, now(), '', now()
  FROM generate_series(0, %(count)s - 1) AS n
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _position_backlog(count: int) -> tuple[float, list[float], list[float]]:
    """The first positioning after an upgrade: bounded rounds until the backlog is done, while a writer
    keeps committing events; returns the total time, each round's time and each write's."""
    from django.db import connection, transaction

    from outbox.feed import ROUND_LIMIT, feed_sequence
    from outbox.models import OutboxEvent

    done = threading.Event()
    writes: list[float] = []

    def writer() -> None:
        try:
            while not done.is_set():
                started = time.perf_counter()
                with transaction.atomic():
                    OutboxEvent.objects.create(
                        event_type="TaskCreated",
                        aggregate_type="task",
                        aggregate_id=uuid.uuid4(),
                        sequence=1,
                        correlation_id="during-catch-up",
                    )
                writes.append(time.perf_counter() - started)
                time.sleep(0.02)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    rounds = []
    started = time.perf_counter()
    while True:  # as feed_catch_up(), timing each round
        began = time.perf_counter()
        assigned = feed_sequence()
        rounds.append(time.perf_counter() - began)
        if assigned < ROUND_LIMIT:
            break
    total = time.perf_counter() - started
    done.set()
    thread.join()
    OutboxEvent.objects.filter(correlation_id="during-catch-up").delete()  # keep the history at `count`
    return total, rounds, writes


def feed_read(count: int) -> None:
    from django.db import connection
    from rest_framework.test import APIClient

    from polaris.accounts.models import User

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_SQL, {"count": count})
    written = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE outbox_outboxevent")
    positioned, rounds, writes = _position_backlog(count)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE outbox_outboxevent")
        cursor.execute("VACUUM ANALYZE outbox_feedentry")
    print(
        f"  history: {count:,} events written in {written:.1f} s (one transaction, as after an upgrade); "
        f"positioned in {len(rounds)} bounded rounds in {positioned:.1f} s: each round (the lock it holds) "
        f"p50 {statistics.median(rounds) * 1000:.0f} ms, max {max(rounds) * 1000:.0f} ms"
    )
    print(
        f"  meanwhile a writer committed {len(writes)} events: commit p50 "
        f"{statistics.median(writes) * 1000:.1f} ms, max {max(writes) * 1000:.1f} ms"
    )

    admin = User.objects.create(username="bench-admin", role=User.Role.ADMIN)
    client = APIClient()
    client.force_authenticate(admin)
    rates = []
    for _ in range(2):
        seen, after = 0, "0"
        started = time.perf_counter()
        while True:
            response = client.get("/api/workflow/events", {"after": after, "limit": 1000})
            assert response.status_code == 200, response.content[:300]
            body = response.json()
            seen += len(body["events"])
            after = body["next"]
            if not body["has_more"]:
                break
        elapsed = time.perf_counter() - started
        assert seen == count, (seen, count)
        rates.append(seen / elapsed)

    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as raw:
        started = time.perf_counter()
        last, seen = 0, 0
        while True:
            rows = raw.execute(
                "SELECT f.position, e.* FROM outbox_feedentry f "
                "JOIN outbox_outboxevent e ON e.id = f.event_id "
                "WHERE f.position > %s ORDER BY f.position LIMIT 1000",
                [last],
            ).fetchall()
            if not rows:
                break
            seen += len(rows)
            last = rows[-1][0]
        baseline = seen / (time.perf_counter() - started)
    best = max(rates)
    print(f"  API consumer (limit=1000): {best:,.0f} ev/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})")
    print(
        f"  baseline, raw keyset SQL via psycopg: {baseline:,.0f} ev/s  (API = {best / baseline:.0%} of it)"
    )
    print(f"  target >= 20,000 ev/s -> {'met' if best >= 20_000 else 'NOT met'}")


def latency(events: int) -> None:
    from django.db import connection, transaction

    from outbox.feed import FeedScope, feed_page
    from outbox.feed_wait import feed_wait
    from outbox.models import OutboxEvent

    head = feed_page(scope=FeedScope(), limit=1).head  # start at the end of the history
    commits: dict[str, float] = {}
    seen: dict[str, dict[str, float]] = {"long-poll": {}, "1 s polling": {}}
    done = threading.Event()

    def consumer(kind: str) -> None:
        after = head
        try:
            while not done.is_set() or len(seen[kind]) < len(commits):
                if kind == "long-poll":
                    page = feed_wait(
                        read=lambda after=after: feed_page(scope=FeedScope(), after=after), wait=2
                    )
                else:
                    page = feed_page(scope=FeedScope(), after=after)
                now = time.monotonic()
                for event in page.events:
                    seen[kind][event["id"]] = now
                after = page.next
                if kind != "long-poll":
                    time.sleep(1.0)
        finally:
            connection.close()

    threads = [threading.Thread(target=consumer, args=(kind,)) for kind in seen]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    rng = random.Random(3)
    for _ in range(events):
        time.sleep(rng.uniform(0.2, 0.6))
        with transaction.atomic():
            event = OutboxEvent.objects.create(
                event_type="TaskCreated",
                aggregate_type="task",
                aggregate_id=uuid.uuid4(),
                sequence=1,
                correlation_id="latency",
            )
        commits[str(event.id)] = time.monotonic()
    done.set()
    for thread in threads:
        thread.join(30)
    p50 = {}
    for kind, times in seen.items():
        lags = [times[i] - commits[i] for i in commits if i in times]
        p50[kind] = statistics.median(lags)
        print(
            f"  {kind:12}: p50 {p50[kind] * 1000:7.1f} ms, p90 {_pct(lags, 0.9) * 1000:7.1f} ms "
            f"({len(lags)}/{len(commits)} seen)"
        )
    ratio = p50["1 s polling"] / max(p50["long-poll"], 1e-6)
    print(f"  long-poll p50 is {ratio:.0f}x lower; target >= 10x -> {'met' if ratio >= 10 else 'NOT met'}")


# --- 3. webhooks ----------------------------------------------------------------------------------


class _FlakyReceiver:
    """A local receiver on 127.0.0.1 that answers 500 to the first attempt of each event in ``fail_first``
    (per endpoint path) and 200 otherwise, and records every request in arrival order."""

    def __init__(self, fail_first: set[str]) -> None:
        self.fail_first = fail_first
        self.requests: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                event_id = self.headers["webhook-id"]
                with receiver.lock:
                    seen = receiver.requests[self.path]
                    first = all(other != event_id for other, _ in seen)
                    status = 500 if first and event_id in receiver.fail_first else 200
                    seen.append((event_id, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _hook_worker(log_dir: Path, retry_seconds: float) -> subprocess.Popen:
    """One real Celery worker process (solo pool), the retry schedule shortened to ``retry_seconds``."""
    schedule = ",".join(str(retry_seconds * 2**i) for i in range(5))
    env = {**os.environ, "WEBHOOK_RETRY_SCHEDULE_SECONDS": schedule, "PYTHONUNBUFFERED": "1"}
    args = ["-P", "solo", "-n", "hooks-bench@%h", "--without-gossip", "--without-mingle"]
    return celery_start("worker", args, env, log_dir / "worker.log")


def _wait_ready(worker: subprocess.Popen) -> None:
    from polaris.celery import app

    deadline = time.monotonic() + 60
    while not app.control.ping(timeout=0.5):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the webhook worker did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hook_events(aggregates: int, length: int) -> list:
    from outbox.models import OutboxEvent

    events = []
    for _ in range(aggregates):
        aggregate_id = uuid.uuid4()
        events += [
            OutboxEvent(
                event_type="TaskStateChanged",
                aggregate_type="task",
                aggregate_id=aggregate_id,
                sequence=n,
                correlation_id="hooks",
                payload={"n": n},
            )
            for n in range(1, length + 1)
        ]
    # Interleaved as dispatch would write them (aggregates progress side by side).
    events.sort(key=lambda e: (e.sequence, str(e.aggregate_id)))
    return OutboxEvent.objects.bulk_create(events, batch_size=2000)


def _deliver_all(endpoint, events: list) -> float:
    """Queue one delivery per event (as the webhook action does after commit); wait until every one is
    delivered; returns the seconds from the first queued to the last delivered (as the database says)."""
    from django.db.models import Max
    from django.utils import timezone

    from automation.models import WebhookDelivery
    from automation.tasks import webhook_enqueue

    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            endpoint=endpoint,
            event=e,
            aggregate_type=e.aggregate_type,
            aggregate_id=e.aggregate_id,
            sequence=e.sequence,
        )
        for e in events
    )
    mine = WebhookDelivery.objects.filter(endpoint=endpoint)
    started = timezone.now()
    for delivery in deliveries:
        webhook_enqueue(delivery.pk)
    deadline = time.monotonic() + 300
    while mine.filter(status="delivered").count() < len(events):
        if (
            time.monotonic() > deadline
            or mine.exclude(status__in=["pending", "delivering", "delivered"]).exists()
        ):
            raise RuntimeError(dict(collections.Counter(mine.values_list("status", flat=True))))
        time.sleep(0.1)
    return (mine.aggregate(last=Max("delivered_at"))["last"] - started).total_seconds()


def _check_arrivals(
    requests: list[tuple[str, int]], events: list, fail_first: set[str], ordered: bool
) -> int:
    """Every event accepted exactly once, each planned failure once; in the ordered arm each aggregate's
    events accepted in sequence order. Returns how many aggregates were accepted out of order."""
    accepted = collections.Counter(event_id for event_id, status in requests if status == 200)
    failed = [event_id for event_id, status in requests if status != 200]
    wanted = {str(e.id) for e in events}
    if set(accepted) != wanted or set(accepted.values()) != {1}:
        raise RuntimeError(f"{len(accepted)} of {len(wanted)} events accepted, max {max(accepted.values())}x")
    if sorted(failed) != sorted(fail_first):
        raise RuntimeError(f"{len(failed)} failed attempts; {len(fail_first)} planned")
    where = {str(e.id): (e.aggregate_id, e.sequence) for e in events}
    arrived: dict = collections.defaultdict(list)
    for event_id, status in requests:
        if status == 200:
            aggregate_id, sequence = where[event_id]
            arrived[aggregate_id].append(sequence)
    disordered = sum(1 for sequences in arrived.values() if sequences != sorted(sequences))
    if ordered and disordered:
        raise RuntimeError(f"ordered endpoint: {disordered} aggregates arrived out of sequence order")
    return disordered


def webhooks(aggregates: int, length: int, *, rounds: int = 2, retry_seconds: float = 1.0) -> None:
    from automation.webhooks.endpoints import webhook_endpoint_create
    from polaris.celery import app

    events = _hook_events(aggregates, length)
    fail_first = {str(e.id) for e in random.Random(7).sample(events, len(events) // 10)}
    failing = {(e.aggregate_id, e.sequence) for e in events if str(e.id) in fail_first}
    behind = sum(1 for e in events if any(a == e.aggregate_id and s < e.sequence for a, s in failing))
    print(
        f"  {len(fail_first)} deliveries (1 in 10, the same in both arms) fail their first attempt (500),"
        f" retried after {retry_seconds:g} s (+-10 %); in the ordered arm they hold back the {behind:,}"
        " deliveries behind them in their aggregate",
        flush=True,
    )
    receiver = _FlakyReceiver(fail_first)
    log_dir = Path(tempfile.mkdtemp(prefix="integrations-bench-"))
    app.control.purge()
    worker = _hook_worker(log_dir, retry_seconds)
    rates: dict[bool, list[float]] = {False: [], True: []}
    disordered: dict[bool, list[int]] = {False: [], True: []}
    cpu_ms: dict[bool, list[float]] = {False: [], True: []}  # the worker's CPU per delivery
    try:
        _wait_ready(worker)
        for run in range(rounds):
            for ordered in (False, True):
                name = f"{'ordered' if ordered else 'unordered'}-{run}"
                endpoint, _ = webhook_endpoint_create(
                    name=name, url=f"{receiver.url}/{name}", ordered=ordered
                )
                cpu = _cpu_seconds(worker.pid)
                seconds = _deliver_all(endpoint, events)
                rates[ordered].append(len(events) / seconds)
                cpu_ms[ordered].append((_cpu_seconds(worker.pid) - cpu) * 1000 / len(events))
                disordered[ordered].append(
                    _check_arrivals(receiver.requests[f"/{name}"], events, fail_first, ordered)
                )
    except Exception:
        print(f"--- worker log ---\n{(log_dir / 'worker.log').read_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        process_stop(worker)
        receiver.server.shutdown()
    for ordered, label in ((False, "unordered"), (True, "ordered")):
        runs = ", ".join(f"{r:,.0f}" for r in rates[ordered])
        print(
            f"  {label + ':':<10} {max(rates[ordered]):,.0f} deliveries/s (runs: {runs}); worker CPU"
            f" {min(cpu_ms[ordered]):.1f} ms per delivery; aggregates received out of sequence order:"
            f" {', '.join(map(str, disordered[ordered]))} of {aggregates}"
        )
    print(
        "  every delivery accepted exactly once in every run; the ordered arm in sequence order per aggregate"
    )
    share = max(rates[True]) / max(rates[False])
    print(f"  ordered = {share:.0%} of unordered; target >= 50 % -> {'met' if share >= 0.5 else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch database")
    parser.add_argument("--only", choices=["feed", "latency", "webhooks"], action="append")
    parser.add_argument("--retry-seconds", type=float, default=1.0, help="webhooks: the first retry's delay")
    args = parser.parse_args(argv)
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
        parts = args.only or ["feed", "latency", "webhooks"]
        if "feed" in parts:
            count = 100_000 if args.quick else 1_000_000
            print(f"Event feed read: a consumer follows the cursor through a {count:,}-event history")
            feed_read(count)
        if "latency" in parts:
            events = 10 if args.quick else 30
            print(f"\nCommit -> consumer latency: {events} commits at random 0.2-0.6 s intervals")
            latency(events)
        if "webhooks" in parts:
            aggregates, length = (50, 10) if args.quick else (200, 10)
            print(
                f"\nWebhooks to a local receiver, one Celery worker process (solo pool): {aggregates}"
                f" aggregates x {length} events = {aggregates * length:,} deliveries per run, unordered and"
                " ordered alternated"
            )
            webhooks(aggregates, length, retry_seconds=args.retry_seconds)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(url, BENCH_DATABASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
