"""The event feed's long-polls on the async tier, against the real servers ``make run`` starts: gunicorn
with 2 sync workers (the API) and the async tier (gunicorn with uvicorn workers, ``polaris.asgi``).

Waiting holds no sync worker (the stall the issue measured: 24 s for a task list behind two long-polls),
waits are capped per user (429 + ``Retry-After``), every waiter of a process shares its one LISTEN
connection, a commit wakes them, and a consumer following cursors through the async tier never misses an
event while writers commit out of order.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from rest_framework_simplejwt.tokens import AccessToken

from outbox.api.feed_caps import USER_WAITS_KEY
from outbox.feed_broadcast import FeedBroadcaster, ProcessFull
from outbox.feed_cursor import cursor_encode
from outbox.models import OutboxEvent
from tests.support.processes import async_tier_process, gunicorn_process, process_env, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FEED = "/api/workflow/events"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def servers(django_db_setup, django_db_blocker):
    """(sync tier URL, async tier URL): gunicorn 2 sync workers and one async process, as ``make run``."""
    with django_db_blocker.unblock():
        env = process_env(SECRET_KEY=settings.SECRET_KEY)
    web, tier = _free_port(), _free_port()
    with gunicorn_process(port=web, env=env, workers=2), async_tier_process(port=tier, env=env):
        yield f"http://127.0.0.1:{web}", f"http://127.0.0.1:{tier}"


@pytest.fixture(autouse=True)
def _no_wait_slots_left():
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(USER_WAITS_KEY.format(user="*")):
        client.delete(key)


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def get(url: str, user, timeout: float = 40, **params) -> httpx.Response:
    return httpx.get(url, params=params, headers=bearer(user), timeout=timeout)


def listen_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query ILIKE 'LISTEN %%'"
        )
        return cursor.fetchone()[0]


def user_waits(user) -> int:
    return redis.Redis.from_url(settings.REDIS_URL).zcard(USER_WAITS_KEY.format(user=user.pk))


def test_the_per_user_cap_of_waits_stalls_nothing_refuses_one_more_and_a_commit_answers_them(
    servers, client_user, admin_user, make_task
):
    sync_url, async_url = servers
    make_task()
    head = get(async_url + FEED, client_user).json()["next"]
    admin_head = get(async_url + FEED, admin_user).json()["next"]
    cap = settings.EVENT_FEED_MAX_WAITS_PER_USER
    with ThreadPoolExecutor(2 * cap) as pool:
        waits = [pool.submit(get, async_url + FEED, client_user, after=head, wait=20) for _ in range(cap)]
        admin_waits = [
            pool.submit(get, async_url + FEED, admin_user, after=admin_head, wait=20) for _ in range(cap)
        ]
        wait_until(lambda: user_waits(client_user) == cap and user_waits(admin_user) == cap, timeout=15)

        # The API answers while the waits are open (on the sync tier, and on the async tier's fall-through).
        for base in (sync_url, async_url):
            started = time.monotonic()
            tasks = get(base + "/api/workflow/tasks", client_user)
            assert tasks.status_code == 200, tasks.text
            assert time.monotonic() - started < 1.0, f"{base}: the task list waited behind the long-polls"

        # One more wait from the same user: refused, with when to retry.
        over = get(async_url + FEED, client_user, after=head, wait=20)
        assert over.status_code == 429
        assert over.json()["error_code"] == "TOO_MANY_WAITS"
        assert over.json()["success"] is False
        assert int(over.headers["Retry-After"]) >= 1

        # Eight waiters, one process: one LISTEN connection.
        assert listen_backends() == 1

        task = make_task(title="wakes them")
        committed = time.monotonic()
        answers = [future.result(timeout=15) for future in waits + admin_waits]
        assert time.monotonic() - committed < 2.0
    for answer in answers:
        assert answer.status_code == 200
        assert [e["aggregate_id"] for e in answer.json()["events"]] == [str(task.pk)]
        assert answer.headers["X-Correlation-ID"]
    assert user_waits(client_user) == 0  # every slot given back


def test_an_abandoned_wait_gives_its_slot_back_at_once(servers, client_user):
    _, async_url = servers
    head = get(async_url + FEED, client_user).json()["next"]
    with pytest.raises(httpx.ReadTimeout):
        get(async_url + FEED, client_user, timeout=1.0, after=head, wait=20)  # the client gives up after 1 s
    wait_until(lambda: user_waits(client_user) == 0, timeout=3)


def test_a_wait_with_nothing_new_returns_after_its_wait_and_keeps_the_request_plumbing(servers, admin_user):
    _, async_url = servers
    head = get(async_url + FEED, admin_user).json()["next"]
    started = time.monotonic()
    response = httpx.get(
        async_url + FEED,
        params={"after": head, "wait": 0.5},
        headers={**bearer(admin_user), "X-Correlation-ID": "feed-test-1"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["events"] == []
    assert 0.45 <= time.monotonic() - started < 2.0
    assert response.headers["X-Correlation-ID"] == "feed-test-1"


@pytest.mark.parametrize(
    ("params", "status", "error_code"),
    [
        ({"after": "tampered", "wait": 5}, 400, "INVALID_CURSOR"),
        ({"after": "@ahead", "wait": 5}, 400, "CURSOR_AHEAD"),
        ({"aggregate_type": "foo", "wait": 5}, 400, "VALIDATION_ERROR"),
        ({"wait": 9999}, 400, "VALIDATION_ERROR"),
    ],
)
def test_bad_cursors_and_queries_are_400_on_the_async_tier(servers, admin_user, params, status, error_code):
    _, async_url = servers
    if params.get("after") == "tampered":
        cursor = get(async_url + FEED, admin_user).json()["next"]
        params = {**params, "after": cursor[:-1] + ("A" if cursor[-1] != "A" else "B")}
    if params.get("after") == "@ahead":
        params = {**params, "after": cursor_encode(500)}
    response = get(async_url + FEED, admin_user, **params)
    assert (response.status_code, response.json()["error_code"]) == (status, error_code)
    assert set(response.json()) == {"success", "error_code", "message", "details"}


def test_anonymous_and_bad_tokens_are_401_on_the_async_tier(servers):
    _, async_url = servers
    anonymous = httpx.get(async_url + FEED, params={"wait": 5}, timeout=10)
    assert (anonymous.status_code, anonymous.json()["error_code"]) == (401, "NOT_AUTHENTICATED")
    forged = httpx.get(async_url + FEED, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert (forged.status_code, forged.json()["error_code"]) == (401, "NOT_AUTHENTICATED")


def test_scope_holds_on_the_async_tier(servers, agent, other_agent, make_task):
    _, async_url = servers
    mine = make_task()
    assert [e["aggregate_id"] for e in get(async_url + FEED, agent).json()["events"]] == [str(mine.pk)]
    assert get(async_url + FEED, other_agent).json()["events"] == []


def _write(aggregate_id, sequence: int) -> OutboxEvent:
    return OutboxEvent.objects.create(
        event_type="TaskStateChanged",
        aggregate_type="task",
        aggregate_id=aggregate_id,
        sequence=sequence,
        correlation_id="async-concurrency",
    )


class Rollback(Exception):
    pass


def test_a_consumer_long_polling_the_async_tier_sees_exactly_the_committed_events(servers, admin_user):
    """The feed's concurrency test, with the consumer following cursors over HTTP through the async tier
    (long-polls that writers' commits wake) while writers take transaction ids early and commit late."""
    _, async_url = servers
    committed: list[str] = []
    lock, done, failures = threading.Lock(), threading.Event(), []

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        streams = {uuid.uuid4(): 0 for _ in range(3)}
        try:
            for _ in range(12):
                aggregate = rng.choice([a for a, n in streams.items() if n < 4] or list(streams))
                try:
                    with transaction.atomic():
                        side = _write(uuid.uuid4(), 1)
                        time.sleep(rng.uniform(0, 0.03))
                        event = _write(aggregate, streams[aggregate] + 1)
                        if rng.random() < 0.15:
                            raise Rollback
                except Rollback:
                    continue
                streams[aggregate] += 1
                with lock:
                    committed.extend([str(side.id), str(event.id)])
                time.sleep(rng.uniform(0, 0.05))
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    seen: list[dict] = []

    def consumer() -> None:
        params: dict = {"limit": 5}
        with httpx.Client(base_url=async_url, headers=bearer(admin_user), timeout=20) as client:
            while True:
                finished = done.is_set()
                response = client.get(FEED, params={**params, "wait": 0 if finished else 2})
                assert response.status_code == 200, response.text
                page = response.json()
                seen.extend(page["events"])
                params["after"] = page["next"]
                if finished and not page["events"]:
                    return

    reader = threading.Thread(target=consumer)
    reader.start()
    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    done.set()
    reader.join(60)
    assert not failures
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was served twice"
    assert sorted(ids) == sorted(committed)
    by_aggregate: dict[str, list[int]] = {}
    for event in seen:
        by_aggregate.setdefault(event["aggregate_id"], []).append(event["sequence"])
    assert all(s == list(range(1, len(s) + 1)) for s in by_aggregate.values()), "per-aggregate order broken"


def test_a_process_holds_at_most_its_cap_of_waiters_on_one_listen_connection():
    async def main() -> None:
        broadcaster = FeedBroadcaster(max_waiters=2)
        try:
            async with broadcaster.subscription(timeout=5) as first, broadcaster.subscription(timeout=5):
                with pytest.raises(ProcessFull):
                    async with broadcaster.subscription(timeout=5):
                        pass
                assert (broadcaster.waiters, broadcaster.connects) == (2, 1)
                await asyncio.to_thread(_notify)
                await asyncio.wait_for(first.woken.wait(), 5)
        finally:
            await broadcaster.close()

    asyncio.run(main())


def test_whom_a_commit_wakes_is_whom_the_page_shows(
    admin_user, agent, other_agent, client_user, other_client, make_task, make_plan
):
    """``feed_matches`` (the broadcaster's choice of whom to wake) agrees with the page's SQL conditions
    for every scope and filter."""
    from outbox.feed import feed_matches, feed_page, feed_scope
    from workflow.services.tasks import task_create

    make_task()
    make_plan()
    task_create(
        actor=other_agent,
        title="theirs",
        task_type="intake",
        service_area="housing",
        client=other_client,
        agency=other_agent.agency,
    )
    every = feed_page(scope=feed_scope(admin_user), limit=1000).events
    assert len(every) >= 3
    for user in (admin_user, agent, other_agent, client_user, other_client):
        scope = feed_scope(user)
        for filters in ({}, {"event_types": ["TaskCreated"]}, {"aggregate_type": "action_plan"}):
            shown = {e["id"] for e in feed_page(scope=scope, limit=1000, **filters).events}
            woken = {e["id"] for e in every if feed_matches(e, scope=scope, **filters)}
            assert woken == shown, (user.username, filters)


def _notify() -> None:
    try:
        with transaction.atomic():
            _write(uuid.uuid4(), 1)
    finally:
        connection.close()


def _get(url: str, headers: dict, **params) -> httpx.Response:
    return httpx.get(url, params=params, headers=headers, timeout=40)


def _long_poll(url: str, user, headers: dict, cursor: str, make) -> str:
    """One long-poll from ``cursor`` answered by a commit (``make()``); the next cursor."""
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(_get, url + FEED, headers, after=cursor, wait=10)
        wait_until(lambda: user_waits(user) == 1, timeout=5)
        make()
        answer = waiting.result(timeout=15)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["events"]) >= 1
    return answer.json()["next"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda user: user.set_password("a-new-Passw0rd-9"), id="password"),
        pytest.param(lambda user: setattr(user, "is_active", False), id="deactivated"),
        pytest.param(lambda user: setattr(user, "token_version", user.token_version + 1), id="revoked"),
    ],
)
def test_a_re_poll_admitted_on_the_loop_is_refused_once_its_user_changes(servers, agent, make_task, change):
    """Re-polls at the fan-out's position are admitted from the token and user row this process checked
    and read before (``outbox.api.feed_repoll``). A change to the user reaches it through the LISTEN
    connection (a trigger on the users table): the next re-poll is refused at once, not admitted on the
    old row."""
    _, async_url = servers
    headers = bearer(agent)  # one token throughout, as a consumer keeps it
    cursor = _get(async_url + FEED, headers).json()["next"]
    cursor = _long_poll(async_url, agent, headers, cursor, make_task)  # the full path learns
    cursor = _long_poll(async_url, agent, headers, cursor, make_task)  # a re-poll on the loop
    change(agent)
    agent.save()
    started = time.monotonic()
    refused = _get(async_url + FEED, headers, after=cursor, wait=10)
    assert (refused.status_code, refused.json()["error_code"]) == (401, "NOT_AUTHENTICATED"), refused.text
    assert time.monotonic() - started < 5  # refused, not admitted to wait on the old row
