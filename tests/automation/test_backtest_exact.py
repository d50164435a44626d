"""The backtest's fast paths (grouped in SQL, memoised while streaming) give exactly what evaluating the
trigger on each event one by one gives, on a random history with missing keys, nulls, errors and roles."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from automation.backtest import trigger_backtest
from automation.engine import event_names
from automation.models import Trigger
from automation.predicates import PredicateError, predicate_compile
from outbox.models import OutboxEvent

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = START + timedelta(days=9)

PREDICATES = [
    'task_type == "intake" and new_state == "completed"',
    'new_state in ("blocked", "completed") or priority == "high"',
    "present(reason) and len(reason) < 4",
    "len(reason) > 2",  # errors where reason is missing or null
    'actor_role == "agency" and depth < 2',
    'aggregate_type == "task" and not (old_state == "new")',
    'payload["task_type"] == "intake" and startswith(lower(payload["title"]), "t")',  # key paths
    'payload["meta"]["source"] == "phone" or payload["meta"] == "n/a"',  # nested path under a read prefix
    'payload["meta"]["source"] in ("phone", None) and payload["meta"]["tags"][0] == "x"',  # an index: whole
    'present(payload["meta"]["source"]) and priority == "high"',  # a path beside a projected name
    "len(payload) > 3",  # the payload itself: whole
    "",  # blank: every event
]


def _history(rng: random.Random, users: list) -> None:
    values = {
        "task_type": ["intake", "assessment", None, "missing"],
        "new_state": ["completed", "blocked", "in_progress", None, "missing"],
        "old_state": ["new", "in_progress", "missing"],
        "priority": ["high", "normal", None],
        "reason": ["", "ok", "too long", None, "missing"],
    }
    events = []
    for n in range(1500):
        payload = {"title": rng.choice(["Task", "task", "Other"]) + f" {n}"}
        meta = rng.choice(["missing", None, "n/a", {}, {"source": "phone"}, {"source": None, "tags": ["x"]}])
        if meta != "missing":
            payload["meta"] = meta
        for key, choices in values.items():
            value = rng.choice(choices)
            if value != "missing":
                payload[key] = value
        events.append(
            OutboxEvent(
                event_type=rng.choice(["TaskStateChanged"] * 4 + ["TaskCreated"]),
                aggregate_type=rng.choice(["task", "action_plan"]),
                aggregate_id=uuid.uuid4(),
                sequence=1,
                # some just outside the window on either side
                occurred_at=START + timedelta(minutes=rng.randrange(-600, 10 * 24 * 60)),
                correlation_id="bt",
                depth=rng.randrange(4),
                actor=rng.choice([None, *users]),
                payload=payload,
                status="dispatched",
            )
        )
    OutboxEvent.objects.bulk_create(events)


def _naive(trigger: Trigger) -> tuple[int, int, int, Counter]:
    """Evaluated, matched, errors and matches per day, one event at a time through the engine's names."""
    compiled = predicate_compile(trigger.predicate)
    evaluated = matched = errors = 0
    days: Counter = Counter()
    for event in OutboxEvent.objects.filter(
        event_type=trigger.event_type, occurred_at__gte=START, occurred_at__lt=UNTIL
    ):
        evaluated += 1
        try:
            hit = compiled.evaluate(event_names(event))
        except PredicateError:
            errors += 1
            continue
        if hit:
            matched += 1
            days[event.occurred_at.astimezone(UTC).date().isoformat()] += 1
    return evaluated, matched, errors, days


@pytest.mark.parametrize("wait_minutes", [None, 30], ids=["grouped", "streamed"])
def test_fast_backtest_equals_the_event_by_event_evaluation(wait_minutes, admin_user, agent, client_user):
    rng = random.Random(12)
    _history(rng, [admin_user, agent, client_user])
    for n, predicate in enumerate(PREDICATES):
        trigger = Trigger.objects.create(
            name=f"bt {n}", event_type="TaskStateChanged", predicate=predicate, wait_minutes=wait_minutes
        )
        answer = trigger_backtest(trigger=trigger, since=START, until=UNTIL)
        evaluated, matched, errors, days = _naive(trigger)
        assert (answer["evaluated"], answer["matched"], answer["evaluation_errors"]) == (
            evaluated,
            matched,
            errors,
        ), predicate
        assert {d["date"].isoformat(): d["matched"] for d in answer["days"] if d["matched"]} == dict(days)
        assert len(answer["sample"]) == min(20, matched)
        compiled = predicate_compile(predicate)
        for entry in answer["sample"]:
            event = OutboxEvent.objects.get(pk=entry["event_id"])
            assert compiled.evaluate(event_names(event)), (predicate, entry)
            assert event.event_type == "TaskStateChanged"
            assert START <= event.occurred_at < UNTIL


def test_a_truncated_grouped_backtest_reads_at_most_the_bound(admin_user, agent, client_user, settings):
    _history(random.Random(5), [admin_user, agent, client_user])
    settings.BACKTEST_MAX_EVENTS = 100
    trigger = Trigger.objects.create(
        name="bt", event_type="TaskStateChanged", predicate='new_state == "blocked"'
    )
    answer = trigger_backtest(trigger=trigger, since=START, until=UNTIL)
    assert answer["evaluated"] == 100
    assert answer["truncated"]
    assert answer["read_until"] is not None
    assert answer["matched"] == sum(d["matched"] for d in answer["days"]) <= 100
