"""The routing decision as a pure function: a rule, a task's facts and the workers' counters in, a ranking
with its reasons out. No database here (``routing.selectors`` loads, ``routing.services.route`` applies), so
every rule of the decision is testable on its own and the same code serves the suggestions and the route.

Load is the priority-weighted count of a worker's open tasks (``PRIORITY_WEIGHTS``); capacity counts open
tasks. A worker who is away is never chosen: their delegate stands in when eligible. Client affinity (the
worker of the client's other open tasks) outranks the strategy when that worker is eligible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# How much an open task weighs in ``weighted_load`` (docs/routing.md).
PRIORITY_WEIGHTS = {"low": 1, "normal": 2, "high": 3, "urgent": 5}
OPEN_STATES = ("new", "in_progress", "blocked")
AFFINITY_SCORE = 1000.0


def weight_of(priority: str) -> int:
    return PRIORITY_WEIGHTS.get(priority, PRIORITY_WEIGHTS["normal"])


@dataclass(frozen=True)
class Worker:
    """A worker as routing sees them (one row of ``routing.selectors.workers_load``)."""

    id: int
    username: str
    is_agent: bool
    service_areas: tuple[str, ...] = ()
    task_types: tuple[str, ...] = ()
    capacity: int | None = None
    away: bool = False
    delegate_id: int | None = None
    open_tasks: int = 0
    weighted_load: int = 0


@dataclass(frozen=True)
class RuleView:
    """What the decision needs of a ``RoutingRule``."""

    id: Any
    name: str
    strategy: str
    candidate_ids: tuple[int, ...] = ()
    use_skills: bool = True
    client_affinity: bool = True
    capacity: int | None = None
    last_assignee_id: int | None = None


@dataclass(frozen=True)
class TaskView:
    task_type: str
    service_area: str
    priority: str
    assignee_id: int | None = None
    affinity_worker_id: int | None = None


def reason(code: str, message: str, **data: Any) -> dict[str, Any]:
    """One reason: a machine-readable code, a sentence for people, and the figures behind it."""
    return {"code": code, "message": message, **data}


@dataclass
class Ranked:
    user_id: int
    username: str
    score: float
    reasons: list[dict[str, Any]]


@dataclass
class Decision:
    rule: RuleView | None
    ranked: list[Ranked] = field(default_factory=list)
    excluded: list[Ranked] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chosen(self) -> Ranked | None:
        return self.ranked[0] if self.ranked else None


def _own_load(worker: Worker, task: TaskView) -> tuple[int, int]:
    """The worker's open count and weighted load without this task (when it is already theirs)."""
    if worker.id == task.assignee_id:
        return worker.open_tasks - 1, worker.weighted_load - weight_of(task.priority)
    return worker.open_tasks, worker.weighted_load


def refusals(worker: Worker, rule: RuleView, task: TaskView) -> list[dict[str, Any]]:
    """Why ``worker`` may not take ``task`` under ``rule`` (empty: eligible)."""
    found = []
    if worker.away:
        found.append(reason("AWAY", f"{worker.username} is away."))
    if rule.use_skills:
        if worker.service_areas and task.service_area not in worker.service_areas:
            found.append(
                reason(
                    "SKILL_MISMATCH",
                    f"{worker.username} does not cover service area {task.service_area or '(none)'!r}.",
                    service_areas=list(worker.service_areas),
                )
            )
        if worker.task_types and task.task_type not in worker.task_types:
            found.append(
                reason(
                    "SKILL_MISMATCH",
                    f"{worker.username} does not take task type {task.task_type!r}.",
                    task_types=list(worker.task_types),
                )
            )
    capacity = worker.capacity if worker.capacity is not None else rule.capacity
    open_tasks, _ = _own_load(worker, task)
    if capacity is not None and open_tasks >= capacity:
        found.append(
            reason(
                "AT_CAPACITY",
                f"{worker.username} has {open_tasks} open tasks (capacity {capacity}).",
                open_tasks=open_tasks,
                capacity=capacity,
            )
        )
    return found


def _pool(rule: RuleView, workers: dict[int, Worker]) -> list[int]:
    if rule.candidate_ids:
        return sorted(set(rule.candidate_ids) & set(workers))
    return sorted(worker_id for worker_id, worker in workers.items() if worker.is_agent)


def decide(rule: RuleView | None, task: TaskView, workers: dict[int, Worker]) -> Decision:
    """Rank the workers ``rule`` allows for ``task``; the first is the choice. ``workers``: the agency's
    active staff by id (candidates and delegates are looked up in it: nobody outside it is ever chosen)."""
    if rule is None:
        return Decision(
            None, reasons=[reason("NO_RULE_MATCHED", "No enabled routing rule matches this task.")]
        )
    decision = Decision(rule)
    eligible: dict[int, list[dict[str, Any]]] = {}
    for worker_id in _pool(rule, workers):
        worker = workers[worker_id]
        refused = refusals(worker, rule, task)
        if not refused:
            eligible.setdefault(worker_id, [])
            continue
        decision.excluded.append(Ranked(worker_id, worker.username, 0.0, refused))
        delegate = workers.get(worker.delegate_id) if worker.away and worker.delegate_id else None
        if delegate is not None and delegate.id != worker_id:
            if delegate_refused := refusals(delegate, rule, task):
                refused.append(
                    reason(
                        "DELEGATE_INELIGIBLE",
                        f"Delegate {delegate.username} cannot take it either.",
                        delegate=delegate.id,
                        delegate_reasons=[item["code"] for item in delegate_refused],
                    )
                )
            else:
                eligible.setdefault(delegate.id, []).append(
                    reason(
                        "DELEGATE_FOR",
                        f"Stands in for {worker.username}, who is away.",
                        away_worker=worker_id,
                    )
                )
    if not eligible:
        codes = sorted({item["code"] for ranked in decision.excluded for item in ranked.reasons})
        decision.reasons.append(
            reason(
                "NO_ELIGIBLE_WORKER",
                "Nobody can take this task now: the task stays unassigned.",
                candidates=len(decision.excluded),
                excluded_for=codes,
            )
        )
        return decision
    decision.ranked = _rank(rule, task, workers, eligible)
    decision.reasons.append(
        reason(
            "RULE_MATCHED",
            f"Rule {rule.name!r} ({rule.strategy}) matched.",
            rule=str(rule.id),
            strategy=rule.strategy,
        )
    )
    return decision


def _rank(
    rule: RuleView, task: TaskView, workers: dict[int, Worker], eligible: dict[int, list[dict[str, Any]]]
) -> list[Ranked]:
    ids = sorted(eligible)
    ranked: list[Ranked] = []
    if rule.strategy == "round_robin":
        last = rule.last_assignee_id
        start = next((i for i, worker_id in enumerate(ids) if last is None or worker_id > last), 0)
        order = ids[start:] + ids[:start]
        for position, worker_id in enumerate(order):
            ranked.append(
                Ranked(
                    worker_id,
                    workers[worker_id].username,
                    float(len(order) - position),
                    [
                        *eligible[worker_id],
                        reason(
                            "ROUND_ROBIN_TURN",
                            "Next in turn." if position == 0 else f"{position} others are before in turn.",
                            position=position,
                        ),
                    ],
                )
            )
    else:

        def load(worker_id: int) -> tuple[int, int, int]:
            open_tasks, weighted = _own_load(workers[worker_id], task)
            return weighted, open_tasks, worker_id

        for worker_id in sorted(ids, key=load):
            weighted, open_tasks, _ = load(worker_id)
            ranked.append(
                Ranked(
                    worker_id,
                    workers[worker_id].username,
                    round(100.0 / (1 + max(weighted, 0)), 3),
                    [
                        *eligible[worker_id],
                        reason(
                            "LOAD",
                            f"Weighted load {weighted} over {open_tasks} open tasks.",
                            weighted_load=weighted,
                            open_tasks=open_tasks,
                        ),
                    ],
                )
            )
    _skills_reasons(rule, task, workers, ranked)
    return _affinity_first(rule, task, workers, ranked)


def _skills_reasons(
    rule: RuleView, task: TaskView, workers: dict[int, Worker], ranked: Iterable[Ranked]
) -> None:
    if not rule.use_skills:
        return
    for item in ranked:
        worker = workers[item.user_id]
        if worker.service_areas or worker.task_types:
            item.reasons.append(
                reason("SKILLS_MATCH", "Their skills cover this task's type and service area.")
            )


def _affinity_first(
    rule: RuleView, task: TaskView, workers: dict[int, Worker], ranked: list[Ranked]
) -> list[Ranked]:
    """The client's worker (or, while they are away, their delegate) first, when eligible."""
    if not rule.client_affinity or task.affinity_worker_id is None:
        return ranked
    keeper = workers.get(task.affinity_worker_id)
    target = task.affinity_worker_id
    if keeper is not None and keeper.away and keeper.delegate_id:
        target = keeper.delegate_id
    for index, item in enumerate(ranked):
        if item.user_id == target:
            item.score = AFFINITY_SCORE
            item.reasons.insert(
                0,
                reason(
                    "CLIENT_AFFINITY",
                    "Works on this client's other open tasks."
                    if target == task.affinity_worker_id
                    else "Stands in for the worker of this client's other open tasks.",
                    client_worker=task.affinity_worker_id,
                ),
            )
            return [item, *ranked[:index], *ranked[index + 1 :]]
    return ranked
