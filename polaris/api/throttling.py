"""Rate throttles: a fixed-window counter in Redis, one round trip per request whatever the rate.

DRF's ``SimpleRateThrottle`` keeps every request's timestamp of the last window in one cache value and
reads, unpickles, re-pickles and writes the whole list on each request: at the default 6000/minute a busy
user's list holds thousands of entries. Here each (scope, identity, window) has one Redis counter: ``INCR``
it and refresh its expiry in one pipelined round trip. A fixed window admits up to twice the rate across a
window boundary, the usual trade for O(1) work. When Redis is unreachable the throttle lets requests
through (and logs): rate limiting must not take the API down with it.

Rates are read at request time (DRF copies ``DEFAULT_THROTTLE_RATES`` when a class is defined, so a
changed setting would otherwise be ignored).
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

import redis
from django.conf import settings
from rest_framework import throttling
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "polaris:throttle"
SOCKET_TIMEOUT_SECONDS = 0.5


@functools.cache
def _client() -> redis.Redis:
    location = str(settings.CACHES["default"]["LOCATION"])
    return redis.Redis.from_url(
        location, socket_timeout=SOCKET_TIMEOUT_SECONDS, socket_connect_timeout=SOCKET_TIMEOUT_SECONDS
    )


def window_count(key: str, duration: int) -> int | None:
    """Count one more request in ``key``'s window (which expires with it); None if Redis is unreachable."""
    try:
        pipeline = _client().pipeline(transaction=False)
        pipeline.incr(key)
        # The window is in the key, so refreshing the expiry each time cannot extend the window; a plain
        # EXPIRE also works on Redis 6 (``NX`` needs 7).
        pipeline.expire(key, duration + 1)
        count, _ = pipeline.execute()
    except (redis.ConnectionError, redis.TimeoutError) as exc:  # not a command error: that is a bug
        logger.warning("throttle not applied (Redis unavailable: %s)", exc)
        return None
    return int(count)


class FixedWindowThrottleMixin:
    """Replaces ``SimpleRateThrottle.allow_request``/``wait``; keys still come from ``get_cache_key``."""

    scope: str | None
    rate: str | None
    num_requests: int
    duration: int
    timer: Any

    def get_rate(self) -> str | None:
        rates: dict[str, Any] = api_settings.DEFAULT_THROTTLE_RATES
        return rates.get(self.scope or "")

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self._window_ends_at = (window + 1) * self.duration
        count = window_count(f"{KEY_PREFIX}:{key}:{window}", self.duration)
        return count is None or count <= self.num_requests

    def wait(self) -> float | None:
        return max(self._window_ends_at - self.timer(), 1.0)


class AnonRateThrottle(FixedWindowThrottleMixin, throttling.AnonRateThrottle):
    timer = time.time


class UserRateThrottle(FixedWindowThrottleMixin, throttling.UserRateThrottle):
    timer = time.time
