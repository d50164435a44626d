"""The feed under concurrency: many writers committing in random order (some rolling back, one holding
a transaction open) while a consumer follows the cursor; and the long-poll's latency bound."""

import random
import threading
import time
import uuid

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from outbox.feed import FeedScope, feed_page
from outbox.models import OutboxEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


class Rollback(Exception):
    pass


def _write(aggregate_id, sequence: int) -> OutboxEvent:
    return OutboxEvent.objects.create(
        event_type="TaskStateChanged",
        aggregate_type="task",
        aggregate_id=aggregate_id,
        sequence=sequence,
        correlation_id="concurrency",
    )


@pytest.mark.parametrize("round_limit", [10_000, 3], ids=["rounds-unbounded", "rounds-of-3"])
def test_a_consumer_following_the_cursor_sees_exactly_the_committed_events_in_order(round_limit, monkeypatch):
    monkeypatch.setattr("outbox.feed.ROUND_LIMIT", round_limit)
    writers, streams_per_writer, length = 6, 3, 6
    committed: list[str] = []
    committed_lock = threading.Lock()
    done = threading.Event()
    failures: list[BaseException] = []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        streams = {uuid.uuid4(): 0 for _ in range(streams_per_writer)}
        try:
            for _ in range(streams_per_writer * length):
                aggregate = rng.choice([a for a, n in streams.items() if n < length])
                try:
                    with transaction.atomic():
                        # Take a transaction id early, then commit late: the trap for id/xid cursors.
                        side = _write(uuid.uuid4(), 1)
                        time.sleep(rng.uniform(0, 0.02))
                        event = _write(aggregate, streams[aggregate] + 1)
                        if rng.random() < 0.15:
                            raise Rollback
                except Rollback:
                    continue
                streams[aggregate] += 1
                with committed_lock:
                    committed.extend([str(side.id), str(event.id)])
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    def slow_writer() -> None:
        """Holds one transaction open across many feed rounds, then commits."""
        try:
            with transaction.atomic():
                event = _write(uuid.uuid4(), 1)
                time.sleep(0.5)
            with committed_lock:
                committed.append(str(event.id))
        finally:
            connection.close()

    seen: list[dict] = []

    def consumer() -> None:
        after = 0
        try:
            while True:
                finished = done.is_set()
                page = feed_page(scope=FeedScope(), after=after, limit=7)
                seen.extend(page.events)
                after = page.next
                if finished and not page.events:
                    return
                if not page.events:
                    time.sleep(0.005)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(writers)]
    threads.append(threading.Thread(target=slow_writer))
    reader = threading.Thread(target=consumer)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    reader.join(60)

    assert not failures
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was served twice"
    assert sorted(ids) == sorted(committed), "the consumer's events differ from the committed ones"
    by_aggregate: dict[str, list[int]] = {}
    for event in seen:
        by_aggregate.setdefault(event["aggregate_id"], []).append(event["sequence"])
    assert all(s == list(range(1, len(s) + 1)) for s in by_aggregate.values()), "per-aggregate order broken"
    positions = [e["position"] for e in seen]
    assert positions == sorted(positions)


def test_a_long_poll_returns_soon_after_a_commit(admin_user, settings):
    settings.EVENT_FEED_SYNC_MAX_WAIT_SECONDS = 10  # the sync tier's opt-in short wait (off by default)
    client = APIClient()
    client.force_authenticate(admin_user)
    head = client.get("/api/workflow/events").json()["next"]
    answer: dict = {}

    def poll() -> None:
        try:
            started = time.monotonic()
            response = client.get("/api/workflow/events", {"after": head, "wait": 10})
            answer.update(response=response, returned=time.monotonic(), started=started)
        finally:
            connection.close()

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)  # the poller is waiting
    with transaction.atomic():
        event = _write(uuid.uuid4(), 1)
    committed = time.monotonic()
    poller.join(15)
    assert [e["id"] for e in answer["response"].json()["events"]] == [str(event.id)]
    assert answer["returned"] - committed < 1.0, "the long-poll did not return promptly after the commit"


def test_a_long_poll_with_nothing_new_returns_after_its_wait(admin_user, settings):
    settings.EVENT_FEED_SYNC_MAX_WAIT_SECONDS = 10
    client = APIClient()
    client.force_authenticate(admin_user)
    started = time.monotonic()
    response = client.get("/api/workflow/events", {"wait": 0.5})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["events"] == []
    assert 0.45 <= elapsed < 2.0
