"""The event feed's caps on the async tier (``outbox.api.feed_async``): a user's concurrent waits, counted in
Redis and shared by every process (a sorted set, each entry expiring at its wait's deadline, so a killed
process leaks nothing for long), and the refusals' envelope."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
import uuid
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from django.http import HttpResponse

from polaris.api.exceptions import error_body

logger = logging.getLogger(__name__)

USER_WAITS_KEY = "polaris:feed-waits:{user}"


def refusal(status: int, error_code: str, message: str, retry_after: int, **details: Any) -> HttpResponse:
    """The error envelope with ``Retry-After`` (the async tier answers outside DRF's exception handler)."""
    body = error_body(error_code=error_code, message=message, details={"retry_after": retry_after, **details})
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response["Retry-After"] = str(retry_after)
    return response


# One round trip, atomic: drop the expired entries, add this wait, count; over the cap take it back and
# answer when the earliest entry expires (nil: the slot is taken).
_SLOT_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if redis.call('ZCARD', KEYS[1]) <= tonumber(ARGV[4]) then return false end
redis.call('ZREM', KEYS[1], ARGV[3])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return first[2] or ARGV[2]
"""
_SLOT_SHA = hashlib.sha1(_SLOT_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)

Script = tuple[str, str, list[str], list[Any]]  # (SHA-1, the script, keys, arguments)

# ZREM ARGV[i] from KEYS[i], for each i: a batch's removals in one command.
_REMOVE_SCRIPT = """
local removed = {}
for i, key in ipairs(KEYS) do removed[i] = redis.call('ZREM', key, ARGV[i]) end
return removed
"""
_REMOVE_SHA = hashlib.sha1(_REMOVE_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)


class RedisBatch:
    """The commands a loop iteration sends, in one pipeline and one round trip: the waiters one commit
    answers each give their slot back, and their re-polls each take one, at the same moment; one at a
    time they queued for the pool's connections and the answers went out a round trip apart."""

    def __init__(self, client: redis.asyncio.Redis):
        self.client = client
        self._commands: list[tuple[Any, ...]] = []
        self._replies: asyncio.Future | None = None

    async def command(self, *args: Any) -> Any:
        """``args``' reply (an error reply is returned, not raised); connection errors are raised."""
        return (await self.commands([args]))[0]

    async def commands(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Each command's reply, in order, from this iteration's pipeline."""
        if self._replies is None:
            self._replies = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_soon(self._flush)
        replies, first = self._replies, len(self._commands)
        self._commands += commands
        return (await asyncio.shield(replies))[first : first + len(commands)]

    def _flush(self) -> None:
        commands, replies = self._commands, self._replies
        self._commands, self._replies = [], None
        assert replies is not None
        task = asyncio.ensure_future(self._send(commands))
        task.add_done_callback(lambda done: _settle(replies, done))

    async def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        pipeline = self.client.pipeline(transaction=False)
        for args in commands:
            pipeline.execute_command(*args)
        return await pipeline.execute(raise_on_error=False)


def _settle(future: asyncio.Future, done: asyncio.Task) -> None:
    if future.cancelled():
        return
    if done.cancelled():
        future.cancel()
    elif (exc := done.exception()) is not None:
        future.set_exception(exc)
    else:
        future.set_result(done.result())


async def slots_release(batch: RedisBatch, slots: list[tuple[str, str]]) -> None:
    """ZREM each (key, slot id) in one command, awaited: a commit's answers go out after it, so no re-poll
    (from this process or another) can find its user's slot still taken."""
    keys, members = [key for key, _ in slots], [member for _, member in slots]
    try:
        await scripts_run(batch, [(_REMOVE_SHA, _REMOVE_SCRIPT, keys, members)])
    except (redis.ConnectionError, redis.TimeoutError) as exc:  # each entry expires at its deadline
        logger.warning("feed wait slots not freed (Redis unavailable: %s)", exc)


async def scripts_run(batch: RedisBatch, calls: list[Script]) -> list[Any]:
    """Each script's reply, in the batch's round trip (a script Redis has forgotten runs again by EVAL)."""
    replies = await batch.commands(
        [("EVALSHA", sha, len(keys), *keys, *args) for sha, _, keys, args in calls]
    )
    for index, reply in enumerate(replies):
        if isinstance(reply, redis.exceptions.NoScriptError):
            _, script, keys, args = calls[index]
            replies[index] = await batch.client.eval(script, len(keys), *keys, *args)
        elif isinstance(reply, Exception):
            raise reply
    return replies


def user_slot_script(user_id: Any, wait: float) -> tuple[str, Script]:
    """A new slot id, and the script that takes it (``user_slot_taken`` reads its reply)."""
    slot, now = uuid.uuid4().hex, time.time()
    key = USER_WAITS_KEY.format(user=user_id)
    ttl = math.ceil(settings.EVENT_FEED_MAX_WAIT_SECONDS) + 5
    args = [now, now + wait + 1, slot, settings.EVENT_FEED_MAX_WAITS_PER_USER, ttl]
    return slot, (_SLOT_SHA, _SLOT_SCRIPT, [key], args)


def user_slot_taken(slot: str, reply: Any) -> tuple[str | None, int]:
    """(slot id, 0) when taken, or (None, seconds until one frees) at the cap."""
    if reply is None:
        return slot, 0
    return None, max(1, math.ceil(float(reply) - time.time()))


async def user_slot_take(batch: RedisBatch, user_id: Any, wait: float) -> tuple[str | None, int]:
    """Take one of the user's wait slots: (slot id, 0), or (None, seconds until one frees) at the cap.
    When Redis is unreachable the cap is not applied (as the throttles): the process cap still holds."""
    slot, script = user_slot_script(user_id, wait)
    try:
        (reply,) = await scripts_run(batch, [script])
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        logger.warning("feed wait cap not applied (Redis unavailable: %s)", exc)
        return "", 0
    return user_slot_taken(slot, reply)


async def user_slot_free(batch: RedisBatch, user_id: Any, slot: str) -> None:
    if slot:
        try:
            await batch.command("ZREM", USER_WAITS_KEY.format(user=user_id), slot)
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # the entry expires at its deadline
            logger.warning("feed wait slot not freed (Redis unavailable: %s)", exc)
