"""The routing decision as a pure function: a rule, a task's facts and the workers' counters in, a ranking
with its reasons out. No database here (``routing.selectors`` loads, ``routing.services.route`` applies), so
every rule of the decision is testable on its own and the same code serves the suggestions and the route.

Load is the priority-weighted count of a worker's open tasks (``PRIORITY_WEIGHTS``); capacity counts open
tasks. A worker who is away is never chosen: their delegate stands in when eligible. Client affinity (the
worker of the client's other open tasks) outranks the strategy when that worker is eligible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

# How much an open task weighs in ``weighted_load`` (docs/routing.md).
PRIORITY_WEIGHTS = {"low": 1, "normal": 2, "high": 3, "urgent": 5}
OPEN_STATES = ("new", "in_progress", "blocked")
AFFINITY_SCORE = 1000.0


def weight_of(priority: str) -> int:
    return PRIORITY_WEIGHTS.get(priority, PRIORITY_WEIGHTS["normal"])


class Worker(NamedTuple):
    """A worker as routing sees them: one row of ``routing.statements.staff_workers``, in its column order
    (a tuple: a decision makes one per staff member). No skills: empty or ``None``."""

    id: int
    username: str
    is_agent: bool
    service_areas: Sequence[str] | None = ()
    task_types: Sequence[str] | None = ()
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


class Decision:
    """A decision: the rule, the eligible workers ranked (``ranked``, best first), the excluded ones with
    why (``excluded``) and the reasons about the decision as a whole.

    The order is computed for every eligible worker; each ``Ranked`` (score and reasons) is built when it
    is first read: a route reads the first (``chosen``), the suggestions read them all (``ranked``)."""

    def __init__(self, rule: RuleView | None, reasons: list[dict[str, Any]] | None = None) -> None:
        self.rule = rule
        self.excluded: list[Ranked] = []
        self.reasons: list[dict[str, Any]] = reasons or []
        self._order: list[int] = []  # eligible ids, best first
        self._next = 0  # the first of ``_order`` not built yet
        self._build: Callable[[int], Ranked] | None = None
        self._built: list[Ranked] = []  # built, still ranked (a prefix of the order)

    def _rank(self, order: list[int], build: Callable[[int], Ranked]) -> None:
        self._order, self._next, self._build, self._built = order, 0, build, []

    def _build_up_to(self, count: int) -> None:
        while len(self._built) < count and self._next < len(self._order):
            assert self._build is not None
            self._built.append(self._build(self._order[self._next]))
            self._next += 1

    @property
    def ranked(self) -> list[Ranked]:
        """Every eligible worker, best first (built now if not yet)."""
        self._build_up_to(len(self._order))
        return self._built

    @property
    def chosen(self) -> Ranked | None:
        """The first of the ranking (``None``: nobody eligible), built alone."""
        self._build_up_to(1)
        return self._built[0] if self._built else None

    def exclude_chosen(self, refused: list[dict[str, Any]]) -> None:
        """The chosen worker turned out not to be eligible (a re-check under lock): move them to
        ``excluded`` with ``refused``; the next in the ranking becomes the choice."""
        item = self._built.pop(0)
        self.excluded.append(Ranked(item.user_id, item.username, 0.0, refused))


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
    if capacity is not None:
        open_tasks, _ = _own_load(worker, task)
        if open_tasks >= capacity:
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
        return Decision(None, [reason("NO_RULE_MATCHED", "No enabled routing rule matches this task.")])
    decision = Decision(rule)
    # The eligible workers' ids, each with the reasons they carry in from a delegation (usually none).
    eligible: dict[int, list[dict[str, Any]]] = {}
    for worker_id in _pool(rule, workers):
        worker = workers[worker_id]
        refused = refusals(worker, rule, task)
        if not refused:
            eligible.setdefault(worker_id, _NONE)
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
                carried = eligible.get(delegate.id, _NONE)
                eligible[delegate.id] = [
                    *carried,
                    reason(
                        "DELEGATE_FOR",
                        f"Stands in for {worker.username}, who is away.",
                        away_worker=worker_id,
                    ),
                ]
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
    _rank(decision, rule, task, workers, eligible)
    decision.reasons.append(
        reason(
            "RULE_MATCHED",
            f"Rule {rule.name!r} ({rule.strategy}) matched.",
            rule=str(rule.id),
            strategy=rule.strategy,
        )
    )
    return decision


# Shared by every eligible worker who carries no reason in (never appended to: a delegation copies it).
_NONE: list[dict[str, Any]] = []


def _rank(
    decision: Decision,
    rule: RuleView,
    task: TaskView,
    workers: dict[int, Worker],
    eligible: dict[int, list[dict[str, Any]]],
) -> None:
    """Order the eligible workers by the strategy, the client's worker first (``_affinity_target``); the
    ``Ranked`` of each, with its score and reasons, is built when the decision is read (``_ranked``)."""
    ids = sorted(eligible)
    positions: dict[int, int] = {}
    if rule.strategy == "round_robin":
        last = rule.last_assignee_id
        start = next((i for i, worker_id in enumerate(ids) if last is None or worker_id > last), 0)
        order = ids[start:] + ids[:start]
        positions = {worker_id: position for position, worker_id in enumerate(order)}
    else:

        def load(worker_id: int) -> tuple[int, int, int]:
            open_tasks, weighted = _own_load(workers[worker_id], task)
            return weighted, open_tasks, worker_id

        order = sorted(ids, key=load)
    target = _affinity_target(rule, task, workers)
    if target is not None and target in eligible and order[0] != target:
        order.remove(target)
        order.insert(0, target)

    def build(worker_id: int) -> Ranked:
        return _ranked(rule, task, workers[worker_id], eligible[worker_id], positions, len(order), target)

    decision._rank(order, build)


def _ranked(
    rule: RuleView,
    task: TaskView,
    worker: Worker,
    carried: list[dict[str, Any]],
    positions: dict[int, int],
    count: int,
    affinity_target: int | None,
) -> Ranked:
    """One eligible worker's place in the ranking: score and reasons (carried in, the strategy's, skills,
    client affinity first)."""
    reasons = list(carried)
    if rule.strategy == "round_robin":
        position = positions[worker.id]
        score = float(count - position)
        reasons.append(
            reason(
                "ROUND_ROBIN_TURN",
                "Next in turn." if position == 0 else f"{position} others are before in turn.",
                position=position,
            )
        )
    else:
        open_tasks, weighted = _own_load(worker, task)
        score = round(100.0 / (1 + max(weighted, 0)), 3)
        reasons.append(
            reason(
                "LOAD",
                f"Weighted load {weighted} over {open_tasks} open tasks.",
                weighted_load=weighted,
                open_tasks=open_tasks,
            )
        )
    if rule.use_skills and (worker.service_areas or worker.task_types):
        reasons.append(reason("SKILLS_MATCH", "Their skills cover this task's type and service area."))
    if worker.id == affinity_target:
        score = AFFINITY_SCORE
        reasons.insert(
            0,
            reason(
                "CLIENT_AFFINITY",
                "Works on this client's other open tasks."
                if worker.id == task.affinity_worker_id
                else "Stands in for the worker of this client's other open tasks.",
                client_worker=task.affinity_worker_id,
            ),
        )
    return Ranked(worker.id, worker.username, score, reasons)


def _affinity_target(rule: RuleView, task: TaskView, workers: dict[int, Worker]) -> int | None:
    """Who client affinity puts first when eligible: the client's worker, or while they are away their
    delegate (``None``: no affinity)."""
    if not rule.client_affinity or task.affinity_worker_id is None:
        return None
    keeper = workers.get(task.affinity_worker_id)
    if keeper is not None and keeper.away and keeper.delegate_id:
        return keeper.delegate_id
    return task.affinity_worker_id
