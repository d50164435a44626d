"""An in-process stand-in for the webhook worker: the Celery task runs here, its messages (retries
with their countdown, wake-ups of the next delivery) go to a local queue instead of the broker."""

from __future__ import annotations

import heapq
import itertools
import time
from unittest import mock

from automation.tasks import webhook_deliver_task


class WebhookDriver:
    def __init__(self) -> None:
        self.queue: list[tuple[float, int, int]] = []
        self._order = itertools.count()

    def enqueue(self, args, countdown: float = 0, **_options) -> None:
        heapq.heappush(self.queue, (time.monotonic() + (countdown or 0), next(self._order), args[0]))

    def patch(self):
        return mock.patch.object(webhook_deliver_task, "apply_async", side_effect=self.enqueue)

    def run(self, *, max_steps: int = 2000) -> int:
        """Run queued attempts in due order until the queue is empty; returns how many ran."""
        steps = 0
        while self.queue and steps < max_steps:
            due, _, delivery_id = heapq.heappop(self.queue)
            time.sleep(max(0.0, due - time.monotonic()))
            webhook_deliver_task(delivery_id)
            steps += 1
        assert not self.queue, "the deliveries did not settle"
        return steps
