"""The event feed's caps on the async tier (``outbox.api.feed_async``): a user's concurrent waits, counted in
Redis and shared by every process (a sorted set, each entry expiring at its wait's deadline, so a killed
process leaks nothing for long), and the refusals' envelope."""

from __future__ import annotations

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


async def user_slot_take(client: redis.asyncio.Redis, user_id: Any, wait: float) -> tuple[str | None, int]:
    """Take one of the user's wait slots: (slot id, 0), or (None, seconds until one frees) at the cap.
    When Redis is unreachable the cap is not applied (as the throttles): the process cap still holds."""
    key = USER_WAITS_KEY.format(user=user_id)
    slot, now = uuid.uuid4().hex, time.time()
    try:
        pipeline = client.pipeline(transaction=True)
        pipeline.zremrangebyscore(key, "-inf", now)
        pipeline.zadd(key, {slot: now + wait + 1})
        pipeline.zcard(key)
        pipeline.expire(key, math.ceil(settings.EVENT_FEED_MAX_WAIT_SECONDS) + 5)
        _, _, count, _ = await pipeline.execute()
        if count <= settings.EVENT_FEED_MAX_WAITS_PER_USER:
            return slot, 0
        await client.zrem(key, slot)
        earliest = await client.zrange(key, 0, 0, withscores=True)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        logger.warning("feed wait cap not applied (Redis unavailable: %s)", exc)
        return "", 0
    return None, max(1, math.ceil(float(earliest[0][1]) - now)) if earliest else 1


async def user_slot_free(client: redis.asyncio.Redis, user_id: Any, slot: str) -> None:
    if slot:
        try:
            await client.zrem(USER_WAITS_KEY.format(user=user_id), slot)
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # the entry expires at its deadline
            logger.warning("feed wait slot not freed (Redis unavailable: %s)", exc)
