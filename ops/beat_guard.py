"""Exactly one beat: a beat holds a Redis lock while it runs, and a second one refuses to start.

Two beats would send every periodic task twice (harmless for the dispatcher and the scan, which claim with
compare-and-swap, but doubled load and doubled housekeeping). On ``beat_init`` the beat takes the lock
``polaris:beat:lock`` (``SET NX`` with a TTL, via redis-py's ``Lock``) and a daemon thread renews it every
third of the TTL; a second beat finds it held, logs who holds it and exits with status 1 before
scheduling anything. When a beat dies without releasing (SIGKILL, a lost host), the lock expires after
``BEAT_LOCK_TTL_SECONDS`` and the next beat (compose restarts it) takes over.

A lock lost without a rival — Redis restarted without persistence, or unreachable for longer than the
TTL — is taken again at the next renewal (``SET NX`` with the same holder). Only a lock that another beat
now holds stops this one: otherwise a Redis restart would leave the deployment with no beat at all (no
dispatch ticks, no SLA scans, no timer sweeps).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import threading
from typing import Any

import redis
from celery.signals import beat_init
from django.conf import settings

logger = logging.getLogger(__name__)

LOCK_NAME = "polaris:beat:lock"
TTL_SECONDS = 30


def _redis_url() -> str:
    broker = str(getattr(settings, "CELERY_BROKER_URL", "") or "")
    return broker if broker.startswith(("redis://", "rediss://", "unix://")) else str(settings.REDIS_URL)


def beat_lock_acquire(*, ttl: float = TTL_SECONDS) -> Any | None:
    """The held lock, or None when another beat holds it. The lock's value names its holder."""
    client = redis.Redis.from_url(_redis_url())
    holder = f"{socket.gethostname()}:{os.getpid()}"
    lock = client.lock(LOCK_NAME, timeout=ttl, blocking=False, thread_local=False)
    if not lock.acquire(token=holder.encode()):
        return None
    return lock


def beat_lock_holder() -> str | None:
    value = redis.Redis.from_url(_redis_url()).get(LOCK_NAME)
    if not value:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _retake(lock: Any) -> bool:
    """Take a lost lock again if nobody holds it (its key vanished: Redis restarted, or the TTL ran out
    while Redis was unreachable). False when another beat holds it."""
    token = lock.local.token
    try:
        taken = bool(lock.acquire(token=token, blocking=False))
    except redis.exceptions.RedisError:
        logger.warning("beat could not retake its lock (Redis unreachable); retrying", exc_info=True)
        return True
    if taken:
        logger.warning("beat lock %s was lost (Redis restarted?) and nobody held it: taken again", LOCK_NAME)
    return taken


def _keep(lock: Any, ttl: float) -> None:
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl / 3):
            try:
                lock.reacquire()
            except redis.exceptions.LockError:
                if _retake(lock):
                    continue
                holder = beat_lock_holder() or "another beat"
                logger.critical("beat lost its lock %s to %s; stopping", LOCK_NAME, holder)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            except redis.exceptions.RedisError:
                logger.warning("beat could not renew its lock (Redis unreachable); retrying", exc_info=True)

    def release() -> None:
        stop.set()
        with contextlib.suppress(redis.exceptions.LockError, redis.exceptions.RedisError):
            lock.release()

    threading.Thread(target=renew, name="beat-lock", daemon=True).start()
    atexit.register(release)


def _guard_beat(sender: Any = None, **kwargs: Any) -> None:
    ttl = settings.BEAT_LOCK_TTL_SECONDS
    lock = beat_lock_acquire(ttl=ttl)
    if lock is None:
        holder = beat_lock_holder() or "another beat"
        message = (
            f"beat: refusing to start, {holder} already runs beat (Redis lock {LOCK_NAME}); "
            "a deployment runs exactly one beat"
        )
        logger.error(message)
        print(message, flush=True)  # beat's log may not be configured yet
        raise SystemExit(1)
    _keep(lock, ttl)


def connect() -> None:
    beat_init.connect(_guard_beat, weak=False, dispatch_uid="ops.beat_guard")
