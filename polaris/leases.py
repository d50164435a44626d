"""Keeping a short lease alive while its holder works: a heartbeat thread.

A worker that claims rows under a lease (the outbox dispatcher's batches) wants two things at once: a
short lease, so rows whose worker was killed are due again within seconds, and never to lose a claim it is
still working on, however slow the work. ``LeaseHeartbeat`` gives both: while the ``with`` block runs, a
daemon thread calls ``renew()`` every ``every`` seconds. A killed process takes its thread with it, so the
lease lapses within one lease; a live one keeps renewing between (and during) slow handler calls.

The thread uses its own database connection (Django's connections are per thread), so a renewal commits
at once even while the holder is inside a long transaction; it connects only once the first beat is due,
so work that finishes within ``every`` seconds costs a thread start and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from django.db import connection, connections

logger = logging.getLogger(__name__)


def renew_lock_timeout(seconds: float = 1.0) -> None:
    """For a renewal's transaction: give up on a row lock after ``seconds`` rather than wait for it.

    A heartbeat must never hang: its holder joins the thread when the work ends. A renewal that cannot
    get its rows now fails, is logged, and is tried again at the next beat.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(seconds * 1000)}ms"])


class LeaseHeartbeat:
    """``with LeaseHeartbeat(renew=…, every=…):`` renews a lease in the background until the block ends.

    ``renew`` runs in the heartbeat thread and returns how many claims it renewed (logged when it is
    fewer than ``expected``: those claims were lost, another worker may hold them now). A failing renewal
    is logged and retried at the next beat; ``every <= 0`` turns the heartbeat off.
    """

    def __init__(
        self, *, renew: Callable[[], int], every: float, expected: int = 0, name: str = "lease"
    ) -> None:
        self._renew = renew
        self._every = every
        self._expected = expected
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0

    def __enter__(self) -> LeaseHeartbeat:
        if self._every > 0:
            self._thread = threading.Thread(target=self._run, name=f"{self._name}-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._every):
                try:
                    renewed = self._renew()
                except Exception:
                    logger.warning(
                        "%s heartbeat failed; retrying at the next beat", self._name, exc_info=True
                    )
                    continue
                self.beats += 1
                if renewed < self._expected:
                    logger.warning(
                        "%s heartbeat renewed %s of %s claims", self._name, renewed, self._expected
                    )
                    self._expected = renewed  # said once per loss
        finally:
            connections.close_all()  # this thread's connections only
