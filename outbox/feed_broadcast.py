"""One ``LISTEN outbox_feed`` connection per process, fanned out to the waiting long-polls (async tier).

Waiters register (an ``asyncio.Event``, a predicate over event envelopes, and ``covered``: the position up
to which its own last read found nothing for it). One task reads the connection's notifications; a
second, at each batch of them, runs one feed round and reads, once for the whole process, the events
positioned since its last read (``read_new``, in a thread: the window ``(start, head]``). Then, for each
waiter: when ``covered`` reaches the window's start, its page is the window's events after ``covered``
that its predicate accepts (the page's SQL conditions in Python, ``outbox.feed.feed_matches``, held to the
SQL by a test): none — it sleeps on; some — it gets that page, no read of its own. A waiter whose
``covered`` is older wakes to read its page in SQL. So a commit costs one read for the whole process.
Nothing is missed: a waiter registers *before* its first read, so any event positioned after that read is
in a later window, examined while the waiter is registered. When the connection drops (or a read
fails) every waiter is woken to re-read, and the listener reconnects with backoff; waiters that register
meanwhile wait for the LISTEN to be back (bounded by their own deadline). The count of waiters in this
process is capped (``EVENT_FEED_MAX_WAITS_PER_PROCESS``).

Answers first: the pages a fan-out hands out are *deliveries* owed until each is sent
(``delivery_done``); until then new requests wait at ``deliveries_settled`` (for at most
``DELIVERY_GATE_SECONDS``) before their own work. Otherwise the waiters answered first re-poll at once,
their requests' work in the thread pool takes the interpreter from the event loop, and the rest of the
commit's answers queue behind it (measured: a commit's answers spread over hundreds of milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connections

from polaris.sql.session import listen_async

from .feed import FeedPage
from .feed_wait import CHANNEL

logger = logging.getLogger(__name__)

RECONNECT_MIN_SECONDS = 0.2
RECONNECT_MAX_SECONDS = 5.0
DELIVERY_GATE_SECONDS = 0.1  # the longest a new request waits for a fan-out's answers to go out

Envelope = dict[str, Any]
# (position, envelope, the envelope's JSON text as a page shows it)
NewEvent = tuple[int, Envelope, str]
# (the feed's head, the events positioned after ``after`` in position order, or None when too many to
# look at) — run in a thread: it reads the database. ``after`` < 0 asks for the head only.
ReadNew = Callable[[int], tuple[int, list[NewEvent] | None]]
RunSync = Callable[..., Awaitable[Any]]


def listener_params() -> dict:
    """psycopg keyword arguments for the default database (what Django would connect with)."""
    params = connections["default"].get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    return params


class ProcessFull(Exception):
    """This process already holds its cap of waiters."""


@dataclass(eq=False)
class Waiter:
    matches: Callable[[Envelope], bool] | None
    limit: int = 100
    # Waiters with equal keys have equal ``matches``: a commit builds their page once, and they share it.
    key: Hashable | None = None
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    covered: int | None = None  # its last read found nothing for it up to here (set by the waiter)
    page: FeedPage | None = None  # its answer, when the fan-out could build it
    owes_delivery: bool = False  # handed a page not yet sent (``FeedBroadcaster.delivery_done``)
    slot: Any = None  # the caller's: what its ``before_answers`` hook needs of this waiter


class FeedBroadcaster:
    """The process's one listener and its waiters. Create it inside the event loop that serves requests.
    Without ``read_new`` every commit wakes every waiter."""

    def __init__(
        self,
        *,
        max_waiters: int,
        read_new: ReadNew | None = None,
        run_sync: RunSync | None = None,
        channels: dict[str, Callable[[str], None]] | None = None,
        on_gap: Callable[[], None] | None = None,
        before_answers: Callable[[list[Waiter]], Awaitable[None]] | None = None,
    ):
        self.max_waiters = max_waiters
        self._read_new = read_new
        self._run_sync = run_sync
        # More channels on the same connection: each notification's payload goes to its handler, and
        # ``on_gap`` runs whenever the LISTEN starts or stops (what was heard before is no longer complete).
        self._channels = channels or {}
        self._on_gap = on_gap or (lambda: None)
        # Awaited with the waiters a fan-out answers, just before they are woken.
        self._before_answers = before_answers
        self._waiters: set[Waiter] = set()
        self._listening = asyncio.Event()
        self._pending = asyncio.Event()  # notifications not yet fanned out
        self._head: int | None = None  # the last position read_new saw (None: unknown, wake everyone)
        self._owed = 0  # pages handed out and not yet sent
        self._settled = asyncio.Event()  # set while nothing is owed
        self._settled.set()
        self._tasks: list[asyncio.Task] = []
        self.notifications = 0
        self.connects = 0
        self.reads = 0

    @property
    def waiters(self) -> int:
        return len(self._waiters)

    @property
    def examined_to(self) -> int | None:
        """Every event up to this position was in a window the fan-out has examined (None: unknown);
        later ones will be, for the waiters registered then."""
        return self._head if self.listening else None

    @property
    def listening(self) -> bool:
        """The LISTEN is up and the fan-out runs a position round for each commit."""
        return self._listening.is_set() and self._read_new is not None

    def _ensure_started(self) -> None:
        if not self._tasks or any(task.done() for task in self._tasks):
            for task in self._tasks:
                task.cancel()
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._listen(), name="feed-listener")]
            if self._read_new is not None:
                self._tasks.append(loop.create_task(self._fan_out(), name="feed-fan-out"))

    async def _listen(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    **listener_params(), autocommit=True
                ) as conn:
                    for channel in (CHANNEL, *self._channels):
                        await listen_async(conn, channel)
                    self._on_gap()
                    self.connects += 1
                    self._head = None  # unknown after a gap: the next fan-out wakes everyone
                    if self._read_new is not None:
                        self._head = (await self._run_sync(self._read_new, -1))[0]  # type: ignore[misc]
                    self._listening.set()
                    self._wake()  # anything committed while we were not listening: re-read
                    delay = RECONNECT_MIN_SECONDS
                    async for notify in conn.notifies():
                        if (handler := self._channels.get(notify.channel)) is not None:
                            handler(notify.payload)
                            continue
                        self.notifications += 1
                        if self._read_new is None:
                            self._wake()
                        else:
                            self._pending.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: wake everyone, reconnect
                logger.warning(
                    "feed listener lost (%s); reconnecting in %.1f s", exc.__class__.__name__, delay
                )
            self._listening.clear()
            self._on_gap()
            self._head = None
            self._wake()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _fan_out(self) -> None:
        """One read per batch of notifications (those arriving during a read make the next batch)."""
        while True:
            await self._pending.wait()
            self._pending.clear()
            try:
                after = -1 if self._head is None else self._head
                head, events = await self._run_sync(self._read_new, after)  # type: ignore[misc]
                self.reads += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("feed fan-out read failed (%s): waking every waiter", exc.__class__.__name__)
                self._head = None
                self._wake()
                continue
            if after < 0 or events is None:
                self._wake()
            else:
                answered = self._hand_out(after, head, events)
                if answered and self._before_answers is not None:
                    try:
                        await self._before_answers(answered)
                    except Exception:
                        logger.exception("feed fan-out: before_answers failed")
                for waiter in answered:
                    waiter.woken.set()
            self._head = head

    def _wake(self) -> None:
        """Wake every waiter to read its page (the window is unknown or too large to look at)."""
        for waiter in self._waiters:
            waiter.woken.set()

    def _hand_out(self, start: int, head: int, events: list[NewEvent]) -> list[Waiter]:
        """Each waiter's page from the window ``(start, head]`` of ``events``, or a wake to read it; returns
        the waiters given a page (the caller wakes them). Waiters with the same key, ``covered`` and
        ``limit`` get one page object (its rendered body is kept on it)."""
        pages: dict[tuple, FeedPage | None] = {}
        answered: list[Waiter] = []
        for waiter in self._waiters:
            if waiter.woken.is_set():
                continue
            if waiter.matches is None or waiter.covered is None or waiter.covered < start:
                waiter.woken.set()  # a gap before the window: it reads its page itself
                continue
            shared = None if waiter.key is None else (waiter.key, waiter.covered, waiter.limit)
            if shared is None or shared not in pages:
                page = self._page_for(waiter, head, events)
                if shared is not None:
                    pages[shared] = page
            else:
                page = pages[shared]
            if page is None:
                waiter.covered = max(waiter.covered, head)
                continue
            waiter.page = page
            if not waiter.owes_delivery:
                waiter.owes_delivery = True
                self._owed += 1
                self._settled.clear()
            answered.append(waiter)
        return answered

    @staticmethod
    def _page_for(waiter: Waiter, head: int, events: list[NewEvent]) -> FeedPage | None:
        covered, matches = waiter.covered, waiter.matches
        assert matches is not None
        assert covered is not None
        mine = [
            (position, text)
            for position, envelope, text in events
            if position > covered and matches(envelope)
        ]
        if not mine:
            return None
        page = mine[: waiter.limit]
        return FeedPage(
            raw=[text for _, text in page],
            next=page[-1][0] if len(page) == waiter.limit else head,
            head=head,
        )

    def delivery_done(self, waiter: Waiter) -> None:
        """``waiter``'s answer went out (or never will: its client left, it failed); idempotent."""
        if waiter.owes_delivery:
            waiter.owes_delivery = False
            self._owed -= 1
            if self._owed <= 0:
                self._owed = 0
                self._settled.set()

    async def deliveries_settled(self) -> None:
        """Returns once every handed-out page has been sent, or after ``DELIVERY_GATE_SECONDS``."""
        if not self._settled.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), DELIVERY_GATE_SECONDS)

    @contextlib.asynccontextmanager
    async def subscription(
        self,
        *,
        timeout: float,
        matches: Callable[[Envelope], bool] | None = None,
        limit: int = 100,
        key: Hashable | None = None,
    ) -> AsyncIterator[Waiter]:
        """A registered ``Waiter`` while the block runs: ``woken`` is set when a commit writes an event
        ``matches`` accepts (any, without ``matches``; with ``page`` set when the fan-out built it) or
        the listener reconnects. Keep ``covered`` current. ``ProcessFull`` beyond the cap; waits up to
        ``timeout`` for the LISTEN to be up."""
        if len(self._waiters) >= self.max_waiters:
            raise ProcessFull
        waiter = Waiter(matches=matches, limit=limit, key=key)
        self._waiters.add(waiter)
        try:
            self._ensure_started()
            if not self._listening.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._listening.wait(), timeout)
            yield waiter
        finally:
            self._waiters.discard(waiter)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._listening.clear()
