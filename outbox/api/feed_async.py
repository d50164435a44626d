"""The event feed on the async tier (``polaris.asgi`` routes ``GET /api/workflow/events`` here).

Only the waiting is async. The rest is the sync view's own code in a small thread pool
(``EVENT_FEED_ASYNC_THREADS`` database connections at most): DRF's authentication, permissions, throttles
and error envelope, the query string, the scope, the cursor, each page read. Around it, what the sync
tier's middleware does: the correlation id, the request log line, django-prometheus's request metrics.

A request whose first read finds nothing and that asks to ``wait``: takes a slot of its user's cap
(``EVENT_FEED_MAX_WAITS_PER_USER``, a Redis sorted set shared by every process, each entry expiring at its
wait's deadline, so a killed process leaks nothing for long; 429 ``TOO_MANY_WAITS`` with ``Retry-After``
beyond) and of the process's (``EVENT_FEED_MAX_WAITS_PER_PROCESS``; 503 ``FEED_BUSY``), subscribes to the
process's one LISTEN connection (``outbox.feed_broadcast``: one read per commit for the whole process, and
only the waiters whose scope and filters match a new event are woken) and re-reads when woken, until it
finds something or its time is up. While it waits it holds no thread and no database connection.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import redis
import redis.asyncio
import structlog
from django.conf import settings
from django.contrib.auth import get_user
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, resolve
from django.utils.functional import SimpleLazyObject
from django_prometheus.middleware import PrometheusAfterMiddleware, PrometheusBeforeMiddleware

from outbox.feed import FeedPage, FeedScope, feed_matches, feed_page
from outbox.feed_broadcast import FeedBroadcaster, ProcessFull, Waiter
from outbox.metrics import EVENT_FEED_WAITERS, EVENT_FEED_WAITS_REFUSED
from polaris.api.middleware import HEADER as CORRELATION_HEADER
from polaris.correlation import clean_correlation_id, reset_correlation_id, set_correlation_id
from polaris.logging import current_request

from .feed import EventFeedView, FeedRequest, feed_request_parse, feed_response
from .feed_caps import refusal, user_slot_free, user_slot_take

logger = logging.getLogger(__name__)
request_logger = structlog.get_logger("polaris.request")


@dataclass
class FeedTier:
    """What one event loop (one async process) shares: the listener, the thread pool, a Redis client."""

    loop: asyncio.AbstractEventLoop
    broadcaster: FeedBroadcaster
    executor: ThreadPoolExecutor
    redis: redis.asyncio.Redis


_tier: FeedTier | None = None
REDIS_CONNECTIONS = 16  # per async process, for the per-user wait counts
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
        _tier = FeedTier(
            loop=loop,
            broadcaster=FeedBroadcaster(
                max_waiters=settings.EVENT_FEED_MAX_WAITS_PER_PROCESS,
                read_new=feed_read_new,
                run_sync=functools.partial(_run_in, loop, executor),
            ),
            executor=executor,
            # A bounded pool: a burst of waits (a thousand clients re-polling after one commit) queues for
            # a few connections instead of opening one each.
            redis=redis.asyncio.Redis(
                connection_pool=redis.asyncio.BlockingConnectionPool.from_url(
                    str(settings.CACHES["default"]["LOCATION"]),
                    max_connections=REDIS_CONNECTIONS,
                    timeout=5,
                    socket_timeout=2,
                    socket_connect_timeout=2,
                )
            ),
        )
    return _tier


async def feed_tier_close() -> None:
    """Stop the listener (the ASGI lifespan's shutdown)."""
    global _tier
    if _tier is not None:
        await _tier.broadcaster.close()
        await _tier.redis.aclose()
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


# -- the sync pieces (in the pool) ------------------------------------------------------------------------


@dataclass
class Begun:
    """The first half of a request: an answer already, or what to wait for and for whom."""

    response: HttpResponse | None = None
    query: FeedRequest | None = None
    user_id: Any = None
    page: FeedPage | None = None  # the first read's (empty) page


def _attach_session_user(request: HttpRequest) -> None:
    """What SessionMiddleware and AuthenticationMiddleware give a request (for DRF's session auth)."""
    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    request.user = SimpleLazyObject(lambda: get_user(request))  # type: ignore[assignment]


def _view_run(request: HttpRequest, body: Any) -> HttpResponse:
    """Run ``body(view, drf_request)`` as DRF's dispatch would: the view's checks first, DRF's exception
    handler (the error envelope) for whatever it raises, the response finalised and rendered."""
    view = EventFeedView()
    view.setup(request)
    view.headers = view.default_response_headers
    drf_request = view.initialize_request(request)
    view.request = drf_request
    try:
        response = body(view, drf_request)
    except Exception as exc:
        response = view.handle_exception(exc)
    response = view.finalize_response(drf_request, response)
    if hasattr(response, "render"):
        response.render()
    return response


def feed_begin(request: HttpRequest, *, listening: bool, examined_to: int | None = None) -> Begun:
    """Authentication, throttles, the query string, the scope, the cursor and the first read. A request
    that may wait skips the position round while this process's listener is up: the broadcaster runs one
    for every commit before it wakes anyone, so nothing committed stays unpositioned for a waiter; rounds
    serialise on one row. A waiter whose cursor is where the fan-out has examined (``examined_to``: one
    re-polling with the ``next`` it was given) skips the read: nothing lies between (``_wait_and_read``
    reads if the fan-out moved on meanwhile), and that cursor is not ahead of the feed."""
    _attach_session_user(request)
    begun = Begun()

    def body(view: EventFeedView, drf_request: Any) -> HttpResponse:
        view.initial(drf_request)  # authentication, permissions, throttles
        query = feed_request_parse(drf_request)
        if query.wait > 0 and listening and examined_to is not None and query.after == examined_to:
            page = FeedPage(raw=[], next=query.after, head=examined_to)
        else:
            page = query.read(sequence=query.wait <= 0 or not listening)
        if page.raw or page.has_more or query.wait <= 0:  # has_more: a sparse filter, the client goes on
            return feed_response(page, viewer=query.viewer)
        begun.query, begun.user_id, begun.page = query, drf_request.user.pk, page
        return HttpResponse(status=204)  # a placeholder: the caller waits, then calls feed_finish

    response = _view_run(request, body)
    if begun.query is None:
        begun.response = response
    return begun


def feed_finish(request: HttpRequest, query: FeedRequest) -> tuple[HttpResponse, FeedPage | None]:
    """A waiter's read once subscribed: no position round of its own (the broadcaster runs one for each
    commit before it wakes anyone); the response, and the page when there is one."""
    pages: list[FeedPage] = []

    def body(view: EventFeedView, drf_request: Any) -> HttpResponse:
        pages.append(query.read(sequence=False))
        return feed_response(pages[0], viewer=query.viewer)

    return _view_run(request, body), (pages[0] if pages else None)


async def _disconnected(receive: Any) -> None:
    """Returns when the client goes away (an abandoned long-poll then frees its slots at once)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _woken_or_gone(woken: asyncio.Event, gone: asyncio.Task, timeout: float) -> bool:
    """Wait for ``woken`` up to ``timeout``; True if woken, False on timeout or when the client left."""
    waiting = asyncio.ensure_future(woken.wait())
    try:
        await asyncio.wait({waiting, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    return woken.is_set() and not gone.done()


async def _wait_and_read(
    tier: FeedTier, request: HttpRequest, begun: Begun, gone: asyncio.Task, held: list[Waiter]
) -> HttpResponse:
    """Wait for a page; ``held`` gets the waiter, whose delivery the caller settles once it has sent."""
    query, first = begun.query, begun.page
    assert query is not None
    assert first is not None
    deadline = time.monotonic() + query.wait
    slot, retry_after = await user_slot_take(tier.redis, begun.user_id, query.wait)
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
            timeout=query.wait, matches=matches, limit=query.limit
        ) as waiter:
            held.append(waiter)
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
        await user_slot_free(tier.redis, begun.user_id, slot)


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
                begun = await _run_in(
                    tier.loop,
                    tier.executor,
                    functools.partial(
                        feed_begin,
                        listening=tier.broadcaster.listening,
                        examined_to=tier.broadcaster.examined_to,
                    ),
                    request,
                )
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
            level = "warning" if response.status_code >= 500 else "info"
            getattr(request_logger, level)(
                "request.finished",
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        _metrics_after.process_response(request, response)
        _metrics_before.process_response(request, response)
        response[CORRELATION_HEADER] = correlation_id
        await _send(send, response)
    finally:
        for waiter in held:
            tier.broadcaster.delivery_done(waiter)
        current_request.reset(request_token)
        reset_correlation_id(correlation_token)


async def _send(send: Any, response: HttpResponse) -> None:
    headers = [(name.encode("latin-1"), str(value).encode("latin-1")) for name, value in response.items()]
    headers += [
        (b"set-cookie", c.output(header="").strip().encode("latin-1")) for c in response.cookies.values()
    ]
    body = response.content
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
