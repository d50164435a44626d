"""The async tier's re-polls on the loop (``outbox.api.feed_repoll``) and a commit's shared answers: what a
re-poll is admitted from, what makes it take the full path, the users table's notifications, the batched
Redis commands and the slot releases done before any answer, one page and one body per group of
waiters. Real PostgreSQL and Redis; the servers' end-to-end behaviour is in ``test_event_feed_async``."""

from __future__ import annotations

import asyncio
import dataclasses

import psycopg
import pytest
import redis
import redis.asyncio
from django.conf import settings
from django.test import RequestFactory
from rest_framework_simplejwt.tokens import AccessToken

from outbox.api.feed import FeedRequest, feed_response
from outbox.api.feed_caps import USER_WAITS_KEY, RedisBatch, scripts_run, slots_release, user_slot_take
from outbox.api.feed_repoll import USER_CHANNEL, Repolls, scope_key
from outbox.feed import FeedPage, FeedScope, feed_scope
from outbox.feed_broadcast import FeedBroadcaster, Waiter, listener_params
from outbox.feed_cursor import cursor_encode
from polaris.api.authentication import JWTAuthentication

FEED = "/api/workflow/events"


def _request(token: str | None, query: str, accept: str = ""):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if accept:
        headers["HTTP_ACCEPT"] = accept
    request = RequestFactory().get(FEED, **headers)
    request.META["QUERY_STRING"] = query
    return request


def _checked_token(user) -> str:
    """A token this process has validated (as the full path's authentication does)."""
    token = str(AccessToken.for_user(user))
    JWTAuthentication().get_validated_token(token.encode())
    return token


def _learnt(repolls: Repolls, user, token: str, position: int, *, wait: float = 5.0) -> str:
    """A full request ``after=<cursor>&wait=…`` as the full path would have admitted it; the cursor."""
    cursor = cursor_encode(position)
    query = FeedRequest(
        scope=feed_scope(user),
        after=position,
        limit=100,
        event_types=None,
        aggregate_type=None,
        wait=wait,
        viewer=user,
    )
    repolls.learn(_request(token, f"after={cursor}&wait={wait:g}"), query, repolls.epoch)
    return cursor


@pytest.mark.django_db
def test_a_re_poll_is_admitted_from_what_a_full_request_showed_with_the_same_checks(agent):
    repolls, token = Repolls(), _checked_token(agent)
    cursor = _learnt(repolls, agent, token, 7)
    query = repolls.request_of(_request(token, f"after={cursor}&wait=5"), examined_to=7)
    assert query is not None
    assert (query.after, query.wait, query.limit, query.viewer) == (7, 5.0, 100, agent)
    assert query.scope == FeedScope(agency_id=str(agent.agency_id))
    # The same query spelt in another order is another query string: the full path validates it.
    assert repolls.request_of(_request(token, f"wait=5&after={cursor}"), examined_to=7) is not None
    assert repolls.request_of(_request(token, f"after={cursor}&wait=5&limit=3"), examined_to=7) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case",
    [
        "cursor elsewhere",
        "unknown cursor",
        "cursor twice",
        "escaped cursor",
        "other accept",
        "no wait",
        "unchecked token",
        "no token",
        "user changed",
        "gap",
        "row read across a change",
        "inactive",
    ],
)
def test_anything_the_loop_cannot_vouch_for_takes_the_full_path(agent, case):
    repolls, token = Repolls(), _checked_token(agent)
    cursor = _learnt(repolls, agent, token, 7)
    query, examined_to = f"after={cursor}&wait=5", 7
    if case == "cursor elsewhere":
        examined_to = 8
    elif case == "unknown cursor":
        query = f"after={cursor_encode(7)}&wait=5"
    elif case == "cursor twice":
        query = f"after={cursor}&after={cursor}&wait=5"
    elif case == "escaped cursor":
        query = f"after={cursor[:-1]}%{ord(cursor[-1]):02X}&wait=5"
    elif case == "no wait":
        _learnt(repolls, agent, token, 7, wait=0)
        query = f"after={cursor}&wait=0"
    elif case == "unchecked token":
        token = str(AccessToken.for_user(agent))
    elif case == "no token":
        token = ""
    elif case == "user changed":
        repolls.user_changed(str(agent.pk))
    elif case == "gap":
        repolls.gap()
    elif case == "row read across a change":
        repolls = Repolls()
        epoch = repolls.epoch  # taken before the row is read; a change is heard meanwhile
        repolls.user_changed(str(agent.pk))
        repolls.learn(_request(token, query), _query(agent), epoch)
    elif case == "inactive":
        agent.is_active = False  # the kept row is the same object: the checks run on it every time
    accept = "text/html" if case == "other accept" else ""
    assert repolls.request_of(_request(token or None, query, accept), examined_to=examined_to) is None


def _query(user) -> FeedRequest:
    return FeedRequest(
        scope=feed_scope(user), after=7, limit=100, event_types=None, aggregate_type=None, wait=5, viewer=user
    )


@pytest.mark.django_db(transaction=True)
def test_every_change_to_a_user_row_is_notified_at_commit(agent):
    with psycopg.connect(**listener_params(), autocommit=True) as listener:
        listener.execute(f"LISTEN {USER_CHANNEL}")
        agent.first_name = "Renamed"
        agent.save(update_fields=["first_name"])
        payloads = [notify.payload for notify in listener.notifies(timeout=5, stop_after=1)]
    assert payloads == [str(agent.pk)]


def test_a_page_shared_by_staff_and_a_client_renders_each_projection_once(agent, client_user, db):
    text = '{"position" : 12, "event_type": "NotProjected", "payload": {"note": "staff only"}}'
    page = FeedPage(raw=[text], next=12, head=12)
    staff = feed_response(page, viewer=agent).content
    client = feed_response(page, viewer=client_user).content
    assert b"staff only" in staff
    assert b"staff only" not in client
    assert page.raw == [text]  # the shared page is not changed by a projection
    assert feed_response(page, viewer=agent).content is staff  # rendered once
    cursors = {body.split(b'"next":"')[1].split(b'"')[0] for body in (staff, client)}
    assert len(cursors) == 1


def test_waiters_alike_share_one_page_and_their_hook_runs_before_any_is_woken():
    seen: list[bool] = []

    async def before(answered: list[Waiter]) -> None:
        seen.extend(waiter.woken.is_set() for waiter in answered)

    async def main() -> tuple[list[Waiter], list[Waiter]]:
        broadcaster = FeedBroadcaster(max_waiters=10, before_answers=before)
        alike = [Waiter(matches=lambda e: True, covered=10, key="k") for _ in range(3)]
        other = [Waiter(matches=lambda e: True, covered=10, key=None)]
        broadcaster._waiters.update(alike + other)
        answered = broadcaster._hand_out(10, 12, [(11, {}, '{"position": 11}'), (12, {}, '{"position": 12}')])
        assert not any(waiter.woken.is_set() for waiter in answered)
        await broadcaster._before_answers(answered)
        return alike, other

    alike, other = asyncio.run(main())
    assert len({id(waiter.page) for waiter in alike}) == 1
    assert other[0].page is not alike[0].page
    assert other[0].page.raw == alike[0].page.raw
    assert seen == [False] * 4


def test_scope_keys_are_equal_exactly_when_the_waits_match_the_same_events(agent, other_agent, db):
    def key(user, event_types=None):
        return scope_key(dataclasses.replace(_query(user), event_types=event_types))

    assert key(agent) == key(agent)
    assert key(agent) != key(other_agent)
    assert key(agent, ["TaskCreated"]) != key(agent)


@pytest.fixture
def client():
    sync = redis.Redis.from_url(settings.REDIS_URL)
    yield redis.asyncio.Redis.from_url(settings.REDIS_URL), sync
    for key in sync.scan_iter(USER_WAITS_KEY.format(user="batch-*")):
        sync.delete(key)


def test_one_iterations_commands_go_in_one_pipeline_with_replies_in_order(client):
    async_client, sync = client

    async def main() -> list:
        batch = RedisBatch(async_client)
        sync.script_flush()  # the scripts run by EVAL when Redis forgot them
        key = USER_WAITS_KEY.format(user="batch-1")
        taken = await asyncio.gather(*(user_slot_take(batch, "batch-1", 5) for _ in range(3)))
        replies = await asyncio.gather(
            batch.command("ZCARD", key),
            *(batch.command("ZREM", key, slot) for slot, _ in taken),
            batch.command("ZCARD", key),
        )
        (echo,) = await scripts_run(batch, [("0" * 40, "return ARGV[1]", [], ["x"])])
        await async_client.aclose()
        return [replies, echo, taken]

    replies, echo, taken = asyncio.run(main())
    assert [slot is not None for slot, _ in taken] == [True, True, True]  # the cap is 4
    assert replies == [3, 1, 1, 1, 0]  # ZCARD before, each ZREM's own count, ZCARD after (one pipeline)
    assert echo == b"x"


def test_slot_releases_are_done_when_they_return_and_survive_a_forgotten_script(client):
    async_client, sync = client
    key = USER_WAITS_KEY.format(user="batch-2")
    sync.zadd(key, {"a": 1e12, "b": 1e12, "c": 1e12})

    async def main() -> None:
        batch = RedisBatch(async_client)
        sync.script_flush()
        await slots_release(batch, [(key, "a"), (key, "b")])
        assert sync.zcard(key) == 1
        await slots_release(batch, [(key, "c")])
        await async_client.aclose()

    asyncio.run(main())
    assert sync.zcard(key) == 0
