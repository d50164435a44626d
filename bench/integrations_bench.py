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
3. Webhooks. One process plays the worker (the real task body: claim, signed POST, attempt row,
   settle, wake the next), delivering to a local receiver on 127.0.0.1: deliveries/s to an ordered
   endpoint beside an unordered one, same events (200 aggregates x 10). Target: ordered >= 50 %.

    DATABASE_URL=... python bench/integrations_bench.py [--quick] [--keep-db]
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import secrets
import statistics
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def webhooks(aggregates: int, length: int) -> None:
    from unittest import mock

    from automation.models import WebhookDelivery
    from automation.tasks import webhook_deliver_task
    from automation.webhooks.endpoints import webhook_endpoint_create
    from outbox.models import OutboxEvent

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
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
    OutboxEvent.objects.bulk_create(events, batch_size=2000)
    rates = {}
    for run in range(2):
        for ordered in (False, True):
            endpoint, _ = webhook_endpoint_create(name=f"bench-{ordered}-{run}", url=url, ordered=ordered)
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
            queue = collections.deque(d.pk for d in deliveries)  # each queued at creation, as the action does

            def enqueue(args, countdown=0, queue=queue, **_options):
                queue.append(args[0])

            started = time.perf_counter()
            with mock.patch.object(webhook_deliver_task, "apply_async", side_effect=enqueue):
                while queue:
                    webhook_deliver_task(queue.popleft())
            elapsed = time.perf_counter() - started
            delivered = WebhookDelivery.objects.filter(endpoint=endpoint, status="delivered").count()
            assert delivered == len(events), (delivered, len(events))
            rate = delivered / elapsed
            rates.setdefault(ordered, []).append(rate)
    server.shutdown()
    unordered, ordered_rate = max(rates[False]), max(rates[True])
    print(
        f"  unordered: {unordered:,.0f} deliveries/s (runs: {', '.join(f'{r:,.0f}' for r in rates[False])})"
    )
    print(
        f"  ordered:   {ordered_rate:,.0f} deliveries/s (runs: {', '.join(f'{r:,.0f}' for r in rates[True])})"
    )
    share = ordered_rate / unordered
    print(f"  ordered = {share:.0%} of unordered; target >= 50 % -> {'met' if share >= 0.5 else 'NOT met'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch database")
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
        count = 100_000 if args.quick else 1_000_000
        print(f"Event feed read: a consumer follows the cursor through a {count:,}-event history")
        feed_read(count)
        events = 10 if args.quick else 30
        print(f"\nCommit -> consumer latency: {events} commits at random 0.2-0.6 s intervals")
        latency(events)
        aggregates, length = (50, 10) if args.quick else (200, 10)
        print(f"\nWebhooks to a local receiver, one worker process: {aggregates * length:,} deliveries each")
        webhooks(aggregates, length)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(url, BENCH_DATABASE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
