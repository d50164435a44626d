"""Answers first: pages a fan-out hands out are owed until sent, and a new request waits for them (at most
``DELIVERY_GATE_SECONDS``) before its own work — so a commit's answers are not queued behind the re-polls
of the waiters answered first. Pure asyncio, no database: ``_hand_out`` is the fan-out's own step."""

import asyncio
import time

from outbox import feed_broadcast
from outbox.feed_broadcast import FeedBroadcaster, Waiter

EVENTS = [
    (11, {"type": "TaskCreated"}, '{"position": 11}'),
    (12, {"type": "TaskCreated"}, '{"position": 12}'),
]


def _registered(broadcaster: FeedBroadcaster, n: int) -> list[Waiter]:
    waiters = [Waiter(matches=lambda envelope: True, covered=10) for _ in range(n)]
    broadcaster._waiters.update(waiters)
    return waiters


def test_a_new_request_waits_until_every_handed_out_page_is_sent():
    async def main() -> None:
        broadcaster = FeedBroadcaster(max_waiters=10)
        first, second = _registered(broadcaster, 2)
        broadcaster._hand_out(10, 12, EVENTS)
        assert first.page is not None
        assert first.page.raw == ['{"position": 11}', '{"position": 12}']
        gate = asyncio.ensure_future(broadcaster.deliveries_settled())
        await asyncio.sleep(0.01)
        assert not gate.done()  # two answers owed
        broadcaster.delivery_done(first)
        broadcaster.delivery_done(first)  # idempotent: still one owed
        await asyncio.sleep(0.01)
        assert not gate.done()
        broadcaster.delivery_done(second)
        await asyncio.wait_for(gate, 1)

    asyncio.run(main())


def test_the_gate_opens_after_its_bound_when_an_answer_is_never_settled(monkeypatch):
    monkeypatch.setattr(feed_broadcast, "DELIVERY_GATE_SECONDS", 0.05)

    async def main() -> float:
        broadcaster = FeedBroadcaster(max_waiters=10)
        _registered(broadcaster, 1)
        broadcaster._hand_out(10, 12, EVENTS)
        began = time.monotonic()
        await broadcaster.deliveries_settled()
        return time.monotonic() - began

    assert 0.04 <= asyncio.run(main()) < 1


def test_nothing_owed_means_no_wait_and_a_page_handed_twice_is_owed_once():
    async def main() -> None:
        broadcaster = FeedBroadcaster(max_waiters=10)
        await asyncio.wait_for(broadcaster.deliveries_settled(), 0.01)
        (waiter,) = _registered(broadcaster, 1)
        broadcaster._hand_out(10, 12, EVENTS)
        waiter.woken.clear()
        broadcaster._hand_out(12, 13, [(13, {}, '{"position": 13}')])
        broadcaster.delivery_done(waiter)
        await asyncio.wait_for(broadcaster.deliveries_settled(), 0.01)

    asyncio.run(main())
