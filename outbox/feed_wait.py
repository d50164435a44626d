"""Long-poll for the event feed: wait on ``LISTEN outbox_feed`` (a trigger on the outbox notifies at
each commit that wrote events) instead of polling; bounded by the caller's ``wait``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection

from polaris.sql.session import listen

from .feed import FeedPage

CHANNEL = "outbox_feed"


@contextmanager
def feed_listener() -> Iterator[psycopg.Connection]:
    """A dedicated autocommit connection listening on the feed's channel (Django's own connection
    stays free for the reads)."""
    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    listener = psycopg.connect(**params, autocommit=True)
    try:
        listen(listener, CHANNEL)
        yield listener
    finally:
        listener.close()


def feed_wait(*, read: Callable[[], FeedPage], wait: float) -> FeedPage:
    """``read()`` now; if it found nothing, wait up to ``wait`` seconds for a commit that wrote events
    and read again, until something is found or the time is up. LISTEN comes before the second read,
    so a commit between the first read and the LISTEN is not missed."""
    page = read()
    if page.raw or wait <= 0:
        return page
    deadline = time.monotonic() + wait
    with feed_listener() as listener:
        page = read()
        while not page.raw and (remaining := deadline - time.monotonic()) > 0:
            for _notify in listener.notifies(timeout=remaining, stop_after=1):
                pass
            page = read()
    return page
