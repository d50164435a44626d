"""One ``LISTEN outbox_feed`` connection per process, fanned out to every waiting long-poll (async tier).

Waiters register an ``asyncio.Event``; one task reads the connection's notifications and sets every
registered event. A waiter registers *before* its re-read, and the connection is listening before
``subscription()`` returns, so a commit between a waiter's first read and its wait is not missed. When the
connection drops, every waiter is woken (they re-read: a notification may have been lost meanwhile) and
the task reconnects with backoff; waiters that register meanwhile wait for the LISTEN to be back (bounded
by their own deadline). The count of waiters in this process is capped
(``EVENT_FEED_MAX_WAITS_PER_PROCESS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import psycopg
from django.db import connections

from polaris.sql.session import listen_async

from .feed_wait import CHANNEL

logger = logging.getLogger(__name__)

RECONNECT_MIN_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 5.0


def listener_params() -> dict:
    """psycopg keyword arguments for the default database (what Django would connect with)."""
    params = connections["default"].get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    return params


class ProcessFull(Exception):
    """This process already holds its cap of waiters."""


class FeedBroadcaster:
    """The process's one listener and its waiters. Create it inside the event loop that serves requests."""

    def __init__(self, *, max_waiters: int) -> None:
        self.max_waiters = max_waiters
        self._waiters: set[asyncio.Event] = set()
        self._listening = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.notifications = 0
        self.connects = 0

    @property
    def waiters(self) -> int:
        return len(self._waiters)

    def _ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="feed-broadcaster")

    async def _run(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    **listener_params(), autocommit=True
                ) as conn:
                    await listen_async(conn, CHANNEL)
                    self.connects += 1
                    self._listening.set()
                    self._wake_all()  # anything committed while we were not listening: re-read
                    delay = RECONNECT_MIN_SECONDS
                    async for _notify in conn.notifies():
                        self.notifications += 1
                        self._wake_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: wake everyone, reconnect
                logger.warning(
                    "feed listener lost (%s); reconnecting in %.1f s", exc.__class__.__name__, delay
                )
            self._listening.clear()
            self._wake_all()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    def _wake_all(self) -> None:
        for event in self._waiters:
            event.set()

    @contextlib.asynccontextmanager
    async def subscription(self, *, timeout: float) -> AsyncIterator[asyncio.Event]:
        """An event set at each commit that wrote events (and at each reconnect) while the block runs.
        ``ProcessFull`` beyond the cap; waits up to ``timeout`` for the LISTEN to be up."""
        if len(self._waiters) >= self.max_waiters:
            raise ProcessFull
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            self._ensure_started()
            if not self._listening.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._listening.wait(), timeout)
            yield event
        finally:
            self._waiters.discard(event)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._listening.clear()
