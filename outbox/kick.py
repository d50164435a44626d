"""The low-latency path: after a commit that wrote events, ask a worker to dispatch now.

The kick is an optimisation; beat is the safety net. So a kick must never slow the request that
committed: it publishes with a short connection budget (kombu's default retries for about six seconds
when the broker is down) and, after a failure, stays quiet for one dispatch interval (a crude circuit
breaker) so a broker outage costs one short wait per interval, not one per commit.
"""

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import transaction

from polaris.celery import app as celery_app

logger = logging.getLogger(__name__)

# Sent by name, as beat does: the task module imports this one, not the other way round.
DISPATCH_TASK_NAME = "outbox.dispatch"
KICK_CONNECT_TIMEOUT_SECONDS = 0.5
KICK_PENDING_KEY = "polaris:outbox:kick-pending"
_quiet_until = 0.0  # time.monotonic() before which kicks are skipped after a failure
_deferral = threading.local()  # inside kicks_deferred(): .owed says whether a commit wrote events


def _flag_client(connection: Any) -> Any:
    """The Redis client behind a kombu connection, or None on another transport (no coalescing)."""
    return getattr(connection.default_channel, "client", None)


def _send_kick() -> None:
    global _quiet_until
    now = time.monotonic()
    if now < _quiet_until:
        return
    try:
        with celery_app.pool.acquire(block=True, timeout=KICK_CONNECT_TIMEOUT_SECONDS) as connection:
            # (The stubs type the pool's items as producers; they are kombu Connections.)
            connection.ensure_connection(  # type: ignore[attr-defined]
                max_retries=1, interval_start=0, timeout=KICK_CONNECT_TIMEOUT_SECONDS
            )
            client = _flag_client(connection)
            pending_ms = int(settings.OUTBOX_DISPATCH_INTERVAL_SECONDS * 1000)
            if client is not None and not client.set(KICK_PENDING_KEY, "1", nx=True, px=pending_ms):
                return  # a queued kick will see this commit's events
            # No publish retries: the commit has already happened and beat will pick the events up.
            celery_app.send_task(
                DISPATCH_TASK_NAME,
                retry=False,
                expires=settings.OUTBOX_DISPATCH_INTERVAL_SECONDS,
                connection=connection,  # type: ignore[arg-type]  # the pool's items are kombu Connections
            )
    except Exception as exc:
        _quiet_until = now + settings.OUTBOX_DISPATCH_INTERVAL_SECONDS
        logger.warning(
            "dispatch kick not sent (broker unavailable: %s); beat will dispatch within %ss",
            exc,
            settings.OUTBOX_DISPATCH_INTERVAL_SECONDS,
        )


def kick_acknowledge() -> None:
    """Called by each dispatch run before it claims: commits from now on must kick again."""
    try:
        with celery_app.pool.acquire(block=True, timeout=KICK_CONNECT_TIMEOUT_SECONDS) as connection:
            client = _flag_client(connection)
            if client is not None:
                client.delete(KICK_PENDING_KEY)
    except Exception as exc:
        # The flag expires on its own within one interval; dispatching must not wait for it.
        logger.warning("could not clear the pending-kick flag: %s", exc)


def kick_reset() -> None:
    """Close the circuit breaker (tests; or after reconfiguring the broker)."""
    global _quiet_until
    _quiet_until = 0.0


def _owe_kick() -> None:
    if getattr(_deferral, "owed", None) is not None:
        _deferral.owed = True


@contextlib.contextmanager
def kicks_deferred() -> Iterator[None]:
    """Many short transactions in a row (a bulk request): instead of one kick per commit, one kick at the
    end if any of them committed events (a rolled-back one owes none)."""
    if getattr(_deferral, "owed", None) is not None:  # already deferring: the outer block kicks
        yield
        return
    _deferral.owed = False
    try:
        yield
    finally:
        owed, _deferral.owed = _deferral.owed, None
        connection = transaction.get_connection()
        if connection.in_atomic_block:
            # Inside an outer transaction (an Idempotency-Key): its commit is still to come.
            if owed or any(scheduled is _owe_kick for _, scheduled, _ in connection.run_on_commit):
                transaction.on_commit(_send_kick, robust=True)
        elif owed:
            _send_kick()


def kick_after_commit() -> None:
    """Schedule one kick for the current transaction (however many events it writes)."""
    if not settings.OUTBOX_KICK_ON_COMMIT:
        return
    callback = _owe_kick if getattr(_deferral, "owed", None) is not None else _send_kick
    connection = transaction.get_connection()
    if any(scheduled is callback for _, scheduled, _ in connection.run_on_commit):
        return
    transaction.on_commit(callback, robust=True)
