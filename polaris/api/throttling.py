"""Rate throttles: a fixed-window counter in Redis, one round trip per request whatever the rate.

DRF's ``SimpleRateThrottle`` keeps every request's timestamp of the last window in one cache value and
reads, unpickles, re-pickles and writes the whole list on each request: at the default 6000/minute a busy
user's list holds thousands of entries. Here each (scope, identity, window) has one Redis counter: one
command (a two-line Lua script, ``EVALSHA``) counts the request and, on the window's first request, sets
the key's expiry, atomically: one round trip, and none of a pipeline's client-side bookkeeping. A fixed
window admits up to twice the rate across a window boundary, the usual trade for O(1) work. When Redis is
unreachable the throttle lets requests through (and logs): rate limiting must not take the API down with it.

Every throttle keys an anonymous caller on the one client identity (``polaris.proxies.client_ip``: the
right-most ``X-Forwarded-For`` hop that is not a trusted proxy), never on the raw header: DRF's own
``get_ident`` would key on the whole header, which the client writes, so each request through a proxy
that appends to it would land in a bucket of its own. The token endpoint adds two limits of its own,
per client address and per username, counting every attempt (an unknown username included).

Rates are read at request time (DRF copies ``DEFAULT_THROTTLE_RATES`` when a class is defined, so a
changed setting would otherwise be ignored).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from typing import Any

import redis
from django.conf import settings
from rest_framework import throttling
from rest_framework.settings import api_settings

from polaris.proxies import client_ip

logger = logging.getLogger(__name__)

KEY_PREFIX = "polaris:throttle"
SOCKET_TIMEOUT_SECONDS = 0.5


@functools.cache
def _client() -> redis.Redis:
    location = str(settings.CACHES["default"]["LOCATION"])
    return redis.Redis.from_url(
        location, socket_timeout=SOCKET_TIMEOUT_SECONDS, socket_connect_timeout=SOCKET_TIMEOUT_SECONDS
    )


# INCR, and EXPIRE on the window's first request (the window is in the key, so the expiry only reclaims the
# key). Atomic: a key never exists without its expiry. A plain EXPIRE also works on Redis 6.
_COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


_COUNT_SHA = hashlib.sha1(_COUNT_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)


def window_script(key: str, duration: int) -> tuple[str, str, list[str], list[int]]:
    """The counting script for ``key``'s window as (SHA-1, script, keys, arguments), for a caller that
    sends it with other commands (the async feed's re-polls); ``window_count`` runs it alone."""
    return _COUNT_SHA, _COUNT_SCRIPT, [key], [duration + 1]


def window_count(key: str, duration: int) -> int | None:
    """Count one more request in ``key``'s window (which expires with it); None if Redis is unreachable."""
    client = _client()
    try:
        try:
            count = client.evalsha(_COUNT_SHA, 1, key, duration + 1)
        except redis.exceptions.NoScriptError:  # a restarted Redis: EVAL runs it and caches it again
            count = client.eval(_COUNT_SCRIPT, 1, key, duration + 1)
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

    def window_key(self, request: Any, view: Any) -> str | None:
        """The Redis counter of this request's window (None: this throttle does not count it)."""
        if self.rate is None:
            return None
        key = self.get_cache_key(request, view)  # type: ignore[attr-defined]
        if key is None:
            return None
        window = int(self.timer() // self.duration)
        self._window_ends_at = (window + 1) * self.duration
        return f"{KEY_PREFIX}:{key}:{window}"

    def allow_request(self, request: Any, view: Any) -> bool:
        if (key := self.window_key(request, view)) is None:
            return True
        count = window_count(key, self.duration)
        return count is None or count <= self.num_requests

    def wait(self) -> float | None:
        return max(self._window_ends_at - self.timer(), 1.0)

    def get_ident(self, request: Any) -> str:
        return client_ip(request)


class AnonRateThrottle(FixedWindowThrottleMixin, throttling.AnonRateThrottle):
    timer = time.time


class UserRateThrottle(FixedWindowThrottleMixin, throttling.UserRateThrottle):
    timer = time.time


class LoginAddressThrottle(FixedWindowThrottleMixin, throttling.SimpleRateThrottle):
    """Login attempts per client address (``LOGIN_THROTTLE_ADDRESS``), authenticated or not."""

    scope = "login_address"
    timer = time.time

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginUsernameThrottle(FixedWindowThrottleMixin, throttling.SimpleRateThrottle):
    """Login attempts per username (``LOGIN_THROTTLE_USERNAME``), whoever sends them: spreading guesses
    over many addresses does not help. The name is case-folded (Django's lookup is exact, but one bucket
    per spelling would multiply the budget) and hashed (the key has a bounded length and holds no name)."""

    scope = "login_username"
    timer = time.time

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        data = request.data if isinstance(request.data, dict) else {}
        username = data.get("username")
        if not isinstance(username, str) or not username:
            return None  # the serializer refuses the body
        digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}
