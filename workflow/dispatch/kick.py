"""The low-latency path: after a commit that wrote events, ask a worker to dispatch now."""

import logging

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


def _send_kick() -> None:
    from workflow.tasks import outbox_dispatch_task

    # No publish retries: when the broker is down the commit has already happened and beat will
    # pick the events up; the request must not hang on the broker.
    outbox_dispatch_task.apply_async(retry=False, expires=settings.OUTBOX_DISPATCH_INTERVAL_SECONDS)


def kick_after_commit() -> None:
    """Schedule one kick for the current transaction (however many events it writes)."""
    if not settings.OUTBOX_KICK_ON_COMMIT:
        return
    connection = transaction.get_connection()
    if any(callback is _send_kick for _, callback, _ in connection.run_on_commit):
        return
    transaction.on_commit(_send_kick, robust=True)
