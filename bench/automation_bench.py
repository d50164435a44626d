"""Automation cost: dispatch throughput with 50 enabled triggers vs a no-op handler, and predicate speed.

Measured in one run, on a scratch database (``polaris_automation_bench``, dropped at the end):

1. Baseline: N ``TaskStateChanged`` events drained by the real dispatcher (``outbox_dispatch``, in this
   process, i.e. one worker) with only a no-op handler registered: events/s.
2. The same number of fresh events drained with only the ``automation`` handler registered and 50
   enabled triggers on that event type; 10 % of the events match one trigger whose action is
   ``emit_alert`` (an ``Alert`` row, a ``TriggerExecution`` row and a log line each); the other 49
   predicates are evaluated and do not match. Target: >= 40 % of the baseline rate.
   The two arms alternate (``--rounds``) and the best round of each is reported.
3. Predicate evaluation: the 50 compiled predicates over sample events, microseconds per evaluation,
   beside the same tests written as plain Python functions (the floor). Target: <= 20 µs each.
4. The predicate budget (issue #28): arm 2 again with the run-time budget switched off
   (``automation.predicates.BUDGET_ENABLED = False``), alternating with the other arms in every round,
   and the evaluation timing of (3) with it off. Target: the budget costs <= 10 % of throughput.

    DATABASE_URL=... REDIS_URL=... python bench/automation_bench.py [--quick] [--events N] [--keep-db]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_automation_bench"
TRIGGERS = 50
MATCH_EVERY = 10  # one event in ten matches the emit_alert trigger


def _predicates() -> list[str]:
    shapes = [
        'task_type == "kind-{i}" and new_state == "completed"',
        'service_area == "area-{i}" and priority in ("high", "urgent")',
        'new_state == "blocked" and startswith(lower(payload["title"]), "case {i}")',
        'task_type in ["kind-{i}", "other-{i}"] and old_state != new_state and depth < 3',
        'payload["agency_id"] == "agency-{i}" or (task_type == "kind-{i}" and len(reason) > 0)',
    ]
    texts = [shapes[i % len(shapes)].format(i=i) for i in range(TRIGGERS - 1)]
    texts.append('task_type == "hot" and new_state == "completed" and priority in ("high", "urgent")')
    return texts


def _python_equivalents():
    """The same tests as hand-written functions: what evaluation costs with no interpreter at all."""
    funcs = []
    for i in range(TRIGGERS - 1):
        kind = i % 5
        if kind == 0:
            funcs.append(lambda n, i=i: n["task_type"] == f"kind-{i}" and n["new_state"] == "completed")
        elif kind == 1:
            funcs.append(
                lambda n, i=i: n["service_area"] == f"area-{i}" and n["priority"] in ("high", "urgent")
            )
        elif kind == 2:
            funcs.append(
                lambda n, i=i: (
                    n["new_state"] == "blocked"
                    and n["payload"].get("title", "").lower().startswith(f"case {i}")
                )
            )
        elif kind == 3:
            funcs.append(
                lambda n, i=i: (
                    n["task_type"] in [f"kind-{i}", f"other-{i}"]
                    and n["old_state"] != n["new_state"]
                    and n["depth"] < 3
                )
            )
        else:
            funcs.append(
                lambda n, i=i: (
                    n["payload"].get("agency_id") == f"agency-{i}"
                    or (n["task_type"] == f"kind-{i}" and len(n["reason"]) > 0)
                )
            )
    funcs.append(
        lambda n: (
            n["task_type"] == "hot" and n["new_state"] == "completed" and n["priority"] in ("high", "urgent")
        )
    )
    return funcs


def _seed(agency_id: str):
    from automation.models import Trigger
    from automation.services import trigger_errors

    Trigger.objects.all().delete()  # exactly the bench's 50 (the built-in ones would fire on these events)
    predicates = _predicates()
    for position, text in enumerate(predicates):
        hot = position == len(predicates) - 1
        actions = (
            [
                {
                    "type": "emit_alert",
                    "params": {"severity": "warning", "message": "Hot task $title completed"},
                }
            ]
            if hot
            else [{"type": "create_task", "params": {"task_type": "follow-up", "title": "Follow up $title"}}]
        )
        trigger = Trigger(
            name=f"bench trigger {position:02d}",
            event_type="TaskStateChanged",
            predicate=text,
            actions=actions,
            position=position,
        )
        errors = trigger_errors(trigger)
        assert not errors, errors
        trigger.save()


def _payload(n: int, agency_id: str) -> dict:
    hot = n % MATCH_EVERY == 0
    return {
        "task_id": str(uuid.uuid4()),
        "title": f"Bench task {n}",
        "task_type": "hot" if hot else "intake",
        "service_area": "housing",
        "priority": "high",
        "client_id": 1,
        "agency_id": agency_id,
        "assignee_id": None,
        "action_plan_id": None,
        "old_state": "in_progress",
        "new_state": "completed",
        "transition": "complete",
        "reason": "",
    }


def _insert_events(count: int, agency_id: str) -> None:
    from outbox.models import OutboxEvent

    OutboxEvent.objects.bulk_create(
        [
            OutboxEvent(
                event_type="TaskStateChanged",
                aggregate_type="task",
                aggregate_id=uuid.uuid4(),
                sequence=2,
                correlation_id=f"bench-{n}",
                payload=_payload(n, agency_id),
            )
            for n in range(count)
        ],
        batch_size=2000,
    )


def _noop(event) -> None:
    return None


def _drain(count: int, agency_id: str, handler_name: str, handler_func) -> float:
    """Insert ``count`` due events, then time the dispatcher draining them with only one handler."""
    from outbox import registry
    from outbox.dispatcher import outbox_dispatch

    _insert_events(count, agency_id)
    saved = dict(registry._handlers)
    registry._handlers.clear()
    registry.register_handler(handler_name, handler_func)
    try:
        started = time.perf_counter()
        report = outbox_dispatch(budget_seconds=3600)
        elapsed = time.perf_counter() - started
    finally:
        registry._handlers.clear()
        registry._handlers.update(saved)
    assert report.dispatched == count, report.as_dict()
    assert not report.handler_failures, report.as_dict()
    return count / elapsed


def _evaluated_per_event() -> float:
    """How many of the 50 predicates an event actually evaluates (the others are ruled out by the
    trigger index: their first clause names a value the event does not have)."""
    from automation.engine import event_names
    from automation.models import Trigger
    from automation.ruleset import ruleset_build
    from outbox.models import OutboxEvent

    ruleset = ruleset_build(list(Trigger.objects.filter(enabled=True).order_by("position", "id")), 0.0)
    events = list(OutboxEvent.objects.order_by("?")[:200])
    return statistics.mean(len(ruleset.candidates(event_names(e, actor_role="agency"))) for e in events)


def _budget(enabled: bool) -> None:
    from automation import predicates

    predicates.BUDGET_ENABLED = enabled


def _predicate_micros(samples: int) -> tuple[float, float, float]:
    from automation.engine import event_names
    from automation.predicates import predicate_compile
    from outbox.models import OutboxEvent

    events = list(OutboxEvent.objects.order_by("?")[:20])
    names = [event_names(event, actor_role="agency") for event in events]
    compiled = [predicate_compile(text) for text in _predicates()]
    python = _python_equivalents()
    matches = [sum(p.evaluate(n) for p in compiled) for n in names]
    assert matches == [sum(bool(f(n)) for f in python) for n in names], "equivalents disagree"

    def timed(funcs) -> float:
        rounds = max(1, samples // (len(funcs) * len(names)))
        started = time.perf_counter()
        for _ in range(rounds):
            for n in names:
                for func in funcs:
                    func(n)
        return (time.perf_counter() - started) / (rounds * len(funcs) * len(names)) * 1e6

    evaluate = [p.evaluate for p in compiled]
    timed(evaluate), timed(python)  # warm up
    with_budget, without_budget = [], []
    for _ in range(3):  # alternating, so both see the same machine
        _budget(True)
        with_budget.append(timed(evaluate))
        _budget(False)
        without_budget.append(timed(evaluate))
    _budget(True)
    return min(with_budget), min(timed(python) for _ in range(3)), min(without_budget)


def run(*, events: int, rounds: int, samples: int) -> dict[str, float]:
    from automation.engine import HANDLER_NAME, automation_handle_event
    from automation.models import Alert, TriggerExecution
    from polaris.accounts.models import Agency

    agency = Agency.objects.create(name="Bench agency", slug="bench-agency")
    agency_id = str(agency.pk)
    _seed(agency_id)
    # The alert log line is part of the work, but printing thousands of them would time the terminal.
    logging.getLogger("automation.actions").setLevel(logging.ERROR)

    warm = max(events // 10, 100)
    _drain(warm, agency_id, "noop", _noop)
    _drain(warm, agency_id, HANDLER_NAME, automation_handle_event)
    alerts_before = Alert.objects.count()

    noop_rates, automation_rates, unbudgeted_rates = [], [], []
    for round_number in range(rounds):
        noop_rates.append(_drain(events, agency_id, "noop", _noop))
        # The budget on and off, in alternating order from round to round.
        for enabled in (True, False) if round_number % 2 == 0 else (False, True):
            _budget(enabled)
            rate = _drain(events, agency_id, HANDLER_NAME, automation_handle_event)
            (automation_rates if enabled else unbudgeted_rates).append(rate)
        _budget(True)
        print(
            f"  round {round_number + 1}: no-op {noop_rates[-1]:,.0f} events/s, "
            f"automation {automation_rates[-1]:,.0f} events/s, "
            f"without the predicate budget {unbudgeted_rates[-1]:,.0f} events/s",
            flush=True,
        )
    alerts = Alert.objects.count() - alerts_before
    expected = 2 * rounds * len([n for n in range(events) if n % MATCH_EVERY == 0])
    assert alerts == expected, (alerts, expected)
    assert TriggerExecution.objects.filter(outcome="matched").count() == alerts + warm // MATCH_EVERY

    micros, python_micros, unbudgeted_micros = _predicate_micros(samples)
    return {
        "unbudgeted": max(unbudgeted_rates),
        "unbudgeted_micros": unbudgeted_micros,
        "budget_paired": statistics.median(
            a / u for a, u in zip(automation_rates, unbudgeted_rates, strict=True)
        ),
        "evaluated": _evaluated_per_event(),
        "noop": max(noop_rates),
        "automation": max(automation_rates),
        "micros": micros,
        "python_micros": python_micros,
        "alerts": alerts,
        "paired": statistics.median(a / n for a, n in zip(automation_rates, noop_rates, strict=True)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 events per arm, 2 rounds")
    parser.add_argument("--events", type=int, default=None, help="events per arm and round (default 5,000)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds per arm (default 3)")
    parser.add_argument("--keep-db", action="store_true", help=f"leave {BENCH_DATABASE} behind")
    args = parser.parse_args(argv)
    events = args.events or (1_000 if args.quick else 5_000)
    rounds = args.rounds or (2 if args.quick else 3)
    samples = 100_000 if args.quick else 500_000

    original_url = os.environ.get("DATABASE_URL")
    if not original_url:
        print("DATABASE_URL is not set (use `make bench` or scripts/devstack.py bench).", file=sys.stderr)
        return 2
    os.environ.setdefault("DEBUG", "true")  # no SECRET_KEY is needed for a scratch run
    os.environ["OUTBOX_KICK_ON_COMMIT"] = "false"  # the bench drains in-process; no broker traffic
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    recreate_database(original_url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(original_url, BENCH_DATABASE)
    try:
        django_setup_and_migrate()
        print(f"draining {events:,} events per arm, {rounds} round(s) ...", flush=True)
        figures = run(events=events, rounds=rounds, samples=samples)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(original_url, BENCH_DATABASE)
        os.environ["DATABASE_URL"] = original_url

    ratio = figures["automation"] / figures["noop"]
    micros_ok = figures["micros"] <= 20
    print()
    print(
        f"Automation benchmark ({TRIGGERS} enabled triggers, 1 event in {MATCH_EVERY} matches emit_alert; "
        f"one worker, best of {rounds})"
    )
    print(f"  dispatch with a no-op handler:     {figures['noop']:,.0f} events/s (baseline)")
    print(f"  dispatch with the automation handler: {figures['automation']:,.0f} events/s")
    print(f"  ratio: {ratio:.0%} of the baseline (target >= 40 %: {'OK' if ratio >= 0.4 else 'MISSED'})")
    print(f"  (median of the per-round ratios, each arm beside the other in time: {figures['paired']:.0%})")
    print(
        f"  predicates evaluated per event: {figures['evaluated']:.1f} of {TRIGGERS} "
        "(the others ruled out by the trigger index)"
    )
    print(
        f"  predicate evaluation: {figures['micros']:.2f} µs each "
        f"(target <= 20 µs: {'OK' if micros_ok else 'MISSED'}); "
        f"the same tests as plain Python functions: {figures['python_micros']:.2f} µs "
        f"({figures['micros'] / figures['python_micros']:.1f}x)"
    )
    budget_ratio = figures["automation"] / figures["unbudgeted"]
    budget_ok = budget_ratio >= 0.9
    print(
        f"  predicate budget: with it {figures['automation']:,.0f} events/s, without it "
        f"{figures['unbudgeted']:,.0f} events/s: {budget_ratio:.1%} "
        f"(target >= 90 %, i.e. the budget costs <= 10 %: {'OK' if budget_ok else 'MISSED'}); "
        f"median of the per-round ratios {figures['budget_paired']:.1%}"
    )
    print(
        f"  predicate evaluation with the budget {figures['micros']:.2f} µs, without it "
        f"{figures['unbudgeted_micros']:.2f} µs ({figures['micros'] / figures['unbudgeted_micros']:.2f}x)"
    )
    return 0 if ratio >= 0.4 and micros_ok and budget_ok else 1


if __name__ == "__main__":
    sys.exit(main())
