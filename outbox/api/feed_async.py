"""The event feed on the async tier (``polaris.asgi`` routes ``GET /api/workflow/events`` here).

Only the waiting is async. A request's first half is the sync view's own code in a small thread pool
(``outbox.api.feed_thread``, ``EVENT_FEED_ASYNC_THREADS`` database connections at most): DRF's
authentication, permissions, throttles and error envelope, the query string, the scope, the cursor, each
page read — except a long-poll's re-poll from where the fan-out has examined, which needs no read and is
admitted on the loop from what this process learnt of its token, user and query
(``outbox.api.feed_repoll``). Around it, what the sync tier's middleware does: the correlation id, the
request log line, django-prometheus's request metrics.

A request whose first read finds nothing and that asks to ``wait``: takes a slot of its user's cap
(``EVENT_FEED_MAX_WAITS_PER_USER``, a Redis sorted set shared by every process, each entry expiring at its
wait's deadline, so a killed process leaks nothing for long; 429 ``TOO_MANY_WAITS`` with ``Retry-After``
beyond) and of the process's (``EVENT_FEED_MAX_WAITS_PER_PROCESS``; 503 ``FEED_BUSY``), subscribes to the
process's one LISTEN connection (``outbox.feed_broadcast``: one read per commit for the whole process, and
only the waiters whose scope and filters match a new event are woken) and re-reads when woken, until it
finds something or its time is up. While it waits it holds no thread and no database connection.

A commit's answers: waiters with the same scope, filters and cursor share one page, one rendered body
per projection and one cursor; their slots are given back in one Redis command before the first answer
leaves (``outbox.api.feed_caps.slots_release``); each answer is sent before any answer's log line
and metrics; the Redis commands of one loop iteration (re-polls' throttle counts and slot takes) go in one
pipeline (``RedisBatch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
import structlog
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, resolve
from django_prometheus.middleware import PrometheusAfterMiddleware, PrometheusBeforeMiddleware

from outbox.feed import FeedPage, FeedScope, feed_matches, feed_page
from outbox.feed_broadcast import FeedBroadcaster, ProcessFull, Waiter
from outbox.metrics import EVENT_FEED_WAITERS, EVENT_FEED_WAITS_REFUSED
from polaris.api.middleware import HEADER as CORRELATION_HEADER
from polaris.correlation import clean_correlation_id, reset_correlation_id, set_correlation_id
from polaris.logging import current_request

from .feed import feed_response
from .feed_caps import USER_WAITS_KEY, RedisBatch, refusal, slots_release, user_slot_free, user_slot_take
from .feed_repoll import USER_CHANNEL, Repolls, scope_key
from .feed_thread import Begun, feed_begin, feed_finish

logger = logging.getLogger(__name__)
request_logger = structlog.get_logger("polaris.request")


@dataclass
class FeedTier:
    """What one event loop (one async process) shares: the listener, the thread pool, a Redis client."""

    loop: asyncio.AbstractEventLoop
    broadcaster: FeedBroadcaster
    executor: ThreadPoolExecutor
    redis: RedisBatch
    repolls: Repolls


_tier: FeedTier | None = None
REDIS_CONNECTIONS = 4  # per async process: the wait caps and throttles, batched per loop iteration
FAN_OUT_MAX_EVENTS = 5000  # more new events than this at once: wake every waiter rather than match


def feed_read_new(after: int) -> tuple[int, list[tuple[int, dict, str]] | None]:
    """For the broadcaster: one feed round, then every event positioned after ``after`` (all scopes), as
    (position, envelope, the envelope's JSON text)."""
    page = feed_page(scope=FeedScope(), after=max(after, 0), limit=1 if after < 0 else 500)
    if after < 0:
        return page.head, []
    events: list[tuple[int, dict, str]] = []
    while True:
        events += [
            (envelope["position"], envelope, text)
            for envelope, text in zip(page.events, page.raw, strict=True)
        ]
        if not page.has_more or len(events) >= FAN_OUT_MAX_EVENTS:
            break
        page = feed_page(scope=FeedScope(), after=page.next, limit=500, sequence=False)
    return page.head, None if page.has_more else events


def feed_tier() -> FeedTier:
    global _tier
    loop = asyncio.get_running_loop()
    if _tier is None or _tier.loop is not loop:
        executor = ThreadPoolExecutor(settings.EVENT_FEED_ASYNC_THREADS, thread_name_prefix="feed")
        repolls = Repolls()
        client = redis.asyncio.Redis(
            connection_pool=redis.asyncio.BlockingConnectionPool.from_url(
                str(settings.CACHES["default"]["LOCATION"]),
                max_connections=REDIS_CONNECTIONS,
                timeout=5,
                socket_timeout=2,
                socket_connect_timeout=2,
            )
        )
        batch = RedisBatch(client)
        _tier = FeedTier(
            loop=loop,
            broadcaster=FeedBroadcaster(
                max_waiters=settings.EVENT_FEED_MAX_WAITS_PER_PROCESS,
                read_new=feed_read_new,
                run_sync=functools.partial(_run_in, loop, executor),
                channels={USER_CHANNEL: repolls.user_changed},
                on_gap=repolls.gap,
                before_answers=functools.partial(_slots_release, batch),
            ),
            repolls=repolls,
            executor=executor,
            # A bounded pool, each loop iteration's commands in one pipeline: a burst of waits (a thousand
            # clients re-polling after one commit) is a few round trips, not one connection each.
            redis=batch,
        )
    return _tier


async def feed_tier_close() -> None:
    """Stop the listener (the ASGI lifespan's shutdown)."""
    global _tier
    if _tier is not None:
        await _tier.broadcaster.close()
        await _tier.redis.client.aclose()
        _tier.executor.shutdown(wait=False)
        _tier = None


async def _run_in(loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor, fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in the tier's pool, with this context (correlation id, log bindings); the thread's
    database connection is reused within ``CONN_MAX_AGE`` and closed if broken, as per request on WSGI."""

    def run() -> Any:
        close_old_connections()
        try:
            return fn(*args)
        finally:
            close_old_connections()

    context = contextvars.copy_context()
    return await loop.run_in_executor(executor, functools.partial(context.run, run))


async def _disconnected(receive: Any) -> None:
    """Returns when the client goes away (an abandoned long-poll then frees its slots at once)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _woken_or_gone(woken: asyncio.Event, gone: asyncio.Task, timeout: float) -> bool:
    """Wait for ``woken`` (which ``gone`` sets too) up to ``timeout``; True if woken, False on timeout or
    when the client left. No task of its own: a commit wakes hundreds of these at once."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await woken.wait()
    return woken.is_set() and not gone.done()


async def _wait_and_read(
    tier: FeedTier, request: HttpRequest, begun: Begun, gone: asyncio.Task, held: list[Waiter]
) -> HttpResponse:
    """Wait for a page; ``held`` gets the waiter, whose delivery the caller settles once it has sent."""
    query, first = begun.query, begun.page
    assert query is not None
    assert first is not None
    deadline = time.monotonic() + query.wait
    slot, retry_after = begun.slot or await user_slot_take(tier.redis, begun.user_id, query.wait)
    if slot is None:
        EVENT_FEED_WAITS_REFUSED.labels(reason="user").inc()
        return refusal(
            429,
            "TOO_MANY_WAITS",
            f"At most {settings.EVENT_FEED_MAX_WAITS_PER_USER} long-polls per user at once.",
            retry_after,
            max_waits=settings.EVENT_FEED_MAX_WAITS_PER_USER,
        )
    try:
        matches = functools.partial(
            feed_matches,
            scope=query.scope,
            event_types=query.event_types,
            aggregate_type=query.aggregate_type,
        )
        async with tier.broadcaster.subscription(
            timeout=query.wait, matches=matches, limit=query.limit, key=scope_key(query)
        ) as waiter:
            held.append(waiter)
            waiter.slot = (USER_WAITS_KEY.format(user=begun.user_id), slot) if slot else None
            gone.add_done_callback(lambda _: waiter.woken.set())
            EVENT_FEED_WAITERS.inc()
            try:
                # Subscribed (listening) before this read: a commit after it wakes us. The first read
                # (before subscribing) is enough when it saw at least what the fan-out has examined:
                # every later event is in a window the fan-out examines while we are registered.
                page: FeedPage | None
                if (seen := tier.broadcaster.examined_to) is not None and first.next >= seen:
                    response, page = feed_response(first, viewer=query.viewer), first
                else:
                    response, page = await _run_in(tier.loop, tier.executor, feed_finish, request, query)
                # An empty page with more to scan (a sparse filter) answers at once: the client goes on.
                while page is not None and not page.raw and not page.has_more:
                    waiter.covered = page.next
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not await _woken_or_gone(waiter.woken, gone, remaining):
                        break
                    waiter.woken.clear()
                    if waiter.page is not None:  # the fan-out built it: no read of our own
                        page, waiter.page = waiter.page, None
                        response = feed_response(page, viewer=query.viewer)
                    else:
                        response, page = await _run_in(tier.loop, tier.executor, feed_finish, request, query)
                if page is not None and page.cursor is not None:
                    tier.repolls.minted(page.cursor, page.next)  # its re-polls need not decode it
                return response
            finally:
                EVENT_FEED_WAITERS.dec()
    except ProcessFull:
        EVENT_FEED_WAITS_REFUSED.labels(reason="process").inc()
        return refusal(
            503,
            "FEED_BUSY",
            "This server holds as many long-polls as it may; try again shortly.",
            1,
        )
    finally:
        if not held or held[0].slot is not None:  # not given back by the fan-out (``_slots_release``)
            await user_slot_free(tier.redis, begun.user_id, slot)  # before the answer: the re-poll takes one


async def _slots_release(batch: RedisBatch, answered: list[Waiter]) -> None:
    """The fan-out's hook: the slots of the waiters it answers are given back before they are woken."""
    slots = [waiter.slot for waiter in answered if waiter.slot]
    for waiter in answered:
        waiter.slot = None
    if slots:
        await slots_release(batch, slots)


# -- the ASGI application ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _resolved(path: str) -> ResolverMatch:
    """The feed view's match: ``polaris.asgi`` routes one path here (resolving cost 10 % of a long-poll)."""
    return resolve(path)


_metrics_before = PrometheusBeforeMiddleware(lambda request: None)
_metrics_after = PrometheusAfterMiddleware(lambda request: None)


async def event_feed_application(scope: dict, receive: Any, send: Any) -> None:
    """ASGI: ``GET /api/workflow/events`` (``polaris.asgi`` sends only that here)."""
    tier = feed_tier()
    started = time.perf_counter()
    request = ASGIRequest(scope, io.BytesIO())
    correlation_id = clean_correlation_id(request.headers.get(CORRELATION_HEADER))
    request.correlation_id = correlation_id  # type: ignore[attr-defined]
    correlation_token = set_correlation_id(correlation_id)
    request_token = current_request.set(request)
    held: list[Waiter] = []
    try:
        # A fan-out's answers go out before this request's own work competes with them.
        await tier.broadcaster.deliveries_settled()
        request.resolver_match = _resolved(request.path_info)
        _metrics_before.process_request(request)
        _metrics_after.process_request(request)
        _metrics_after.process_view(request, request.resolver_match.func, (), {})
        with structlog.contextvars.bound_contextvars(method=request.method, path=request.path):
            try:
                begun = await _repoll(tier, request) or await _begin(tier, request)
                if begun.response is not None:
                    response = begun.response
                else:
                    gone = asyncio.ensure_future(_disconnected(receive))
                    try:
                        response = await _wait_and_read(tier, request, begun, gone, held)
                    finally:
                        gone.cancel()
            except Exception:
                logger.exception("event feed request failed")
                response = refusal(500, "INTERNAL_ERROR", "An unexpected error occurred.", 1)
                del response["Retry-After"]
            response[CORRELATION_HEADER] = correlation_id
            await _send(send, response)
            if held:  # a fan-out's answer: the rest of its answers go out before this one's bookkeeping
                tier.broadcaster.delivery_done(held[0])
                await asyncio.sleep(0)
            # After the answer is out (a fan-out's answers wait for nothing but their own sending).
            level = "warning" if response.status_code >= 500 else "info"
            getattr(request_logger, level)(
                "request.finished",
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        _metrics_after.process_response(request, response)
        _metrics_before.process_response(request, response)
    finally:
        for waiter in held:
            tier.broadcaster.delivery_done(waiter)
        current_request.reset(request_token)
        reset_correlation_id(correlation_token)


async def _repoll(tier: FeedTier, request: HttpRequest) -> Begun | None:
    """A re-poll at the fan-out's position from a known token, user and query: no thread, no database
    (``outbox.api.feed_repoll``); None: the full path."""
    examined_to = tier.broadcaster.examined_to
    query = tier.repolls.request_of(request, examined_to)
    if query is None or examined_to is None:
        return None
    slot = await tier.repolls.admit(tier.redis, request, query)
    if slot is None:
        return None
    page = FeedPage(raw=[], next=examined_to, head=examined_to)
    return Begun(query=query, user_id=query.viewer.pk, page=page, slot=slot)


async def _begin(tier: FeedTier, request: HttpRequest) -> Begun:
    """The full path's first half in the pool; what it shows is kept for the fast path."""
    epoch = tier.repolls.epoch  # before the user's row is read (changes heard after it are not kept)
    begin = functools.partial(
        feed_begin, listening=tier.broadcaster.listening, examined_to=tier.broadcaster.examined_to
    )
    begun = await _run_in(tier.loop, tier.executor, begin, request)
    if begun.learnt is not None and tier.broadcaster.listening:
        tier.repolls.learn(request, begun.learnt, epoch)
    return begun


async def _send(send: Any, response: HttpResponse) -> None:
    headers = [(name.encode("latin-1"), str(value).encode("latin-1")) for name, value in response.items()]
    headers += [
        (b"set-cookie", c.output(header="").strip().encode("latin-1")) for c in response.cookies.values()
    ]
    body = response.content
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
