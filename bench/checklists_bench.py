"""Checklists for a plan's 20 tasks at once, beside the same items added task by task, in one run.

Plan templates make 20 tasks with their checklists in one transaction; ``checklist_items_add_many`` adds
every item in three statements after the tasks' lock (one INSERT of the items, one UPDATE of the tasks,
one INSERT of the events). The baseline is the same work as 20 ``checklist_items_add`` calls (each its own
lock, INSERT, UPDATE and event) inside one transaction. 20 tasks x 5 items per round; the figure is the
p50 of ``--rounds`` rounds of each (alternating). Target: the batch >= 3x faster than the singles.

Also: completing a task whose checklist is done costs no more than completing one without a checklist
(the ``checklist_complete`` guard reads a counter on the task): p50 of each, same run; target <= 1.2x.

Runs on a scratch database (``polaris_checklists_bench``, dropped at the end).

    DATABASE_URL=... python bench/checklists_bench.py [--quick] [--rounds R] [--keep-db]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

from scratch import database_url, django_setup_and_migrate, drop_database, recreate_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

BENCH_DATABASE = "polaris_checklists_bench"
TASKS, ITEMS = 20, 5


def _people():
    from polaris.accounts.services import agency_get_or_create, user_upsert

    agency = agency_get_or_create(name="Checklists Bench")
    agent, _ = user_upsert(username="bench-cl-agent", password="x", role="agency", agency=agency)
    client, _ = user_upsert(username="bench-cl-client", password="x", role="client", agency=agency)
    return agency, agent, client


def _tasks(agency, agent, client, count: int):
    from workflow.services.tasks import task_create

    return [
        task_create(
            actor=agent, title=f"Step {i}", task_type="intake", client=client, agency=agency, assignee=agent
        )
        for i in range(count)
    ]


def _items() -> list[dict]:
    return [{"text": f"Checklist step {n}", "required": n % 2 == 0} for n in range(ITEMS)]


def _timed_add(people, *, batch: bool) -> float:
    from django.db import transaction

    from workflow.services.checklists import checklist_items_add, checklist_items_add_many

    tasks = _tasks(*people, TASKS)
    agent = people[1]
    started = time.perf_counter()
    with transaction.atomic():
        if batch:
            checklist_items_add_many([(task, _items()) for task in tasks], actor=agent)
        else:
            for task in tasks:
                checklist_items_add(task, _items(), actor=agent)
    return time.perf_counter() - started


def _timed_complete(people, *, with_checklist: bool) -> float:
    from workflow.services.checklists import checklist_item_set_done, checklist_items_add
    from workflow.services.tasks import task_transition

    (task,) = _tasks(*people, 1)
    agent = people[1]
    if with_checklist:
        for item in checklist_items_add(task, _items(), actor=agent):
            checklist_item_set_done(task_id=task.pk, item_id=item.pk, done=True, actor=agent)
    task_transition(task_id=task.pk, target_state="in_progress", actor=agent)
    started = time.perf_counter()
    task_transition(task_id=task.pk, target_state="completed", actor=agent)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is required (scripts/devstack.py bench sets it).", file=sys.stderr)
        return 2
    rounds = args.rounds or (20 if args.quick else 100)
    logging.disable(logging.WARNING)
    recreate_database(url, BENCH_DATABASE)
    os.environ["DATABASE_URL"] = database_url(url, BENCH_DATABASE)
    os.environ["OUTBOX_KICK_ON_COMMIT"] = "false"
    try:
        django_setup_and_migrate()
        people = _people()
        for _ in range(3):  # warm-up: connections, statement caches
            _timed_add(people, batch=True)
            _timed_add(people, batch=False)
        batch, singles, plain, checked = [], [], [], []
        for _ in range(rounds):
            batch.append(_timed_add(people, batch=True))
            singles.append(_timed_add(people, batch=False))
            plain.append(_timed_complete(people, with_checklist=False))
            checked.append(_timed_complete(people, with_checklist=True))
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            drop_database(url, BENCH_DATABASE)
    ms = 1000
    b, s = statistics.median(batch) * ms, statistics.median(singles) * ms
    p, c = statistics.median(plain) * ms, statistics.median(checked) * ms
    add_ok = "met" if s / b >= 3 else "NOT met"
    complete_ok = "met" if c / p <= 1.2 else "NOT met"
    print(f"checklists: {TASKS} tasks x {ITEMS} items, {rounds} rounds")
    print(f"  add_many (one batch)   p50 {b:8.2f} ms")
    print(f"  20 x add (baseline)    p50 {s:8.2f} ms   ratio {s / b:5.1f}x   target >= 3x: {add_ok}")
    print(f"  complete, no checklist p50 {p:8.2f} ms")
    print(f"  complete, checklist    p50 {c:8.2f} ms   ratio {c / p:5.2f}x   target <= 1.2x: {complete_ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
