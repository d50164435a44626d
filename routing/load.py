"""The per-worker load counters (``WorkerLoad``): changed in the transaction of every assignment and state
change, recounted by the repair.

Why counters: a routing decision with 500 workers must not count 100,000 open tasks. They cannot drift
through the services: every change arrives through ``workflow.signals.task_changed`` (transitions and edits)
or ``post_save(created=True)`` (creation with an assignee), inside the write's transaction, and is applied as
an increment (``F() + n``) to rows locked in ascending user id (two writers never wait on each other in
opposite orders). ``load_repair`` recounts anyway (rows written around the services: imports, a shell).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Case, Count, F, IntegerField, Sum, Value, When

from polaris.accounts.models import User
from workflow.models import Task

from .decide import OPEN_STATES, PRIORITY_WEIGHTS, weight_of
from .models import WorkerLoad

logger = logging.getLogger(__name__)

Deltas = dict[int, tuple[int, int]]  # user id -> (open tasks, weighted load)


def _add(deltas: Deltas, user_id: Any, open_delta: int, weight_delta: int) -> None:
    if user_id is None:
        return
    current = deltas.get(int(user_id), (0, 0))
    deltas[int(user_id)] = (current[0] + open_delta, current[1] + weight_delta)


def load_apply(deltas: Deltas) -> None:
    """Add ``deltas`` to the workers' counters (inside the caller's transaction), in ascending user id."""
    for user_id in sorted(deltas):
        open_delta, weight_delta = deltas[user_id]
        if open_delta == 0 and weight_delta == 0:
            continue
        changes = {
            "open_tasks": F("open_tasks") + open_delta,
            "weighted_load": F("weighted_load") + weight_delta,
        }
        if WorkerLoad.objects.filter(pk=user_id).update(**changes) == 0:
            agency_id = User.objects.filter(pk=user_id).values_list("agency_id", flat=True).first()
            WorkerLoad.objects.get_or_create(user_id=user_id, defaults={"agency_id": agency_id})
            WorkerLoad.objects.filter(pk=user_id).update(**changes)


def load_on_create(task: Task) -> None:
    """A task created with an assignee adds to their load."""
    if task.assignee_id is not None and task.state in OPEN_STATES:
        load_apply({task.assignee_id: (1, weight_of(task.priority))})


def load_on_change(task: Task, *, source: str | None, target: str | None, changes: dict[str, Any]) -> None:
    """A transition (``source``/``target``) or an edit (``changes``: ``{field: {"old", "new"}}``)."""
    deltas: Deltas = {}
    if source is not None and target is not None:
        was_open, is_open = source in OPEN_STATES, target in OPEN_STATES
        if was_open != is_open:
            sign = 1 if is_open else -1
            _add(deltas, task.assignee_id, sign, sign * weight_of(task.priority))
    elif "assignee" in changes or "priority" in changes:
        old_priority = changes.get("priority", {}).get("old", task.priority)
        new_priority = task.priority
        if "assignee" in changes:
            _add(deltas, changes["assignee"].get("old"), -1, -weight_of(old_priority))
            _add(deltas, changes["assignee"].get("new"), 1, weight_of(new_priority))
        else:
            _add(deltas, task.assignee_id, 0, weight_of(new_priority) - weight_of(old_priority))
    load_apply(deltas)


def _weight_case() -> Case:
    return Case(
        *(When(priority=priority, then=Value(weight)) for priority, weight in PRIORITY_WEIGHTS.items()),
        default=Value(PRIORITY_WEIGHTS["normal"]),
        output_field=IntegerField(),
    )


def load_recount(*, user_ids: list[int] | None = None) -> dict[int, tuple[int, int]]:
    """The counters as the tasks say they should be: ``{user id: (open, weighted)}`` (absent: zero)."""
    tasks = Task.objects.filter(state__in=OPEN_STATES, assignee__isnull=False)
    if user_ids is not None:
        tasks = tasks.filter(assignee_id__in=user_ids)
    rows = tasks.values("assignee_id").annotate(open=Count("id"), weighted=Sum(_weight_case()))
    return {row["assignee_id"]: (row["open"], row["weighted"] or 0) for row in rows}


def load_stored() -> dict[int, tuple[int, int]]:
    return {
        user_id: (open_tasks, weighted)
        for user_id, open_tasks, weighted in WorkerLoad.objects.values_list(
            "user_id", "open_tasks", "weighted_load"
        )
        if open_tasks or weighted
    }


def load_drift() -> dict[int, dict[str, tuple[int, int]]]:
    """Workers whose counters disagree with a recount: ``{user id: {"stored", "counted"}}``."""
    stored, counted = load_stored(), load_recount()
    return {
        user_id: {"stored": stored.get(user_id, (0, 0)), "counted": counted.get(user_id, (0, 0))}
        for user_id in sorted(stored.keys() | counted.keys())
        if stored.get(user_id, (0, 0)) != counted.get(user_id, (0, 0))
    }


def load_repair() -> int:
    """Set every drifted worker's counters to a recount; returns how many were wrong.

    Each worker is fixed in its own transaction with its row locked first and recounted under the lock: a
    concurrent write that already changed the counter has committed (we waited for it) and is in the recount;
    one that has not yet has not committed its task change either, and adds its increment after ours."""
    fixed = 0
    for user_id in load_drift():
        with transaction.atomic():
            agency_id = User.objects.filter(pk=user_id).values_list("agency_id", flat=True).first()
            row, _ = WorkerLoad.objects.get_or_create(user_id=user_id, defaults={"agency_id": agency_id})
            row = WorkerLoad.objects.select_for_update().get(pk=user_id)
            open_tasks, weighted = load_recount(user_ids=[user_id]).get(user_id, (0, 0))
            if (row.open_tasks, row.weighted_load) != (open_tasks, weighted):
                logger.warning(
                    "routing load drift repaired",
                    extra={"user_id": user_id, "stored": row.open_tasks, "counted": open_tasks},
                )
                WorkerLoad.objects.filter(pk=user_id).update(open_tasks=open_tasks, weighted_load=weighted)
                fixed += 1
    return fixed
