"""The compiled ruleset: enabled triggers per event type, compiled, indexed by guard, cached per process.

Loading the triggers is a query and up to dozens of model instances; doing it for every event would
cost more than all the predicates together. Edits made in this process clear the cache at once
(``ruleset_invalidate``, connected to ``Trigger`` saves and deletes in ``apps.py``); edits made
elsewhere (the admin runs in the web process) reach a worker within ``AUTOMATION_TRIGGER_CACHE_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from .models import Trigger
from .predicates import CompiledPredicate, PredicateError, predicate_compile


def _compile(trigger: Trigger) -> tuple[CompiledPredicate | None, str]:
    try:
        return predicate_compile(trigger.predicate or ""), ""
    except PredicateError as exc:  # only reachable if a row bypassed the trigger rules
        return None, f"Invalid predicate: {exc}"


def trigger_scope(trigger: Trigger) -> str | None:
    """A trigger's agency scope as event payloads spell it (``None``: every agency)."""
    return str(trigger.agency_id) if trigger.agency_id is not None else None


def scope_admits(scope: str | None, payload: Mapping[str, Any]) -> bool:
    """The agency scope rule, one function for the engine and the dry-run (the backtest states it in SQL):
    a trigger scoped to an agency sees only events whose payload ``agency_id`` is that agency; an
    unscoped trigger sees every event."""
    return scope is None or scope == str(payload.get("agency_id"))


class RulesetEntry(NamedTuple):
    trigger: Trigger
    predicate: CompiledPredicate | None
    compile_error: str
    label: str  # the trigger id as the metric label
    agency: str | None  # the agency scope as the payload spells it (None: every agency)


@dataclass(frozen=True)
class Ruleset:
    """The enabled triggers of one event type, compiled and indexed, as loaded at ``loaded_at``.

    ``index[name][value]`` lists the triggers whose predicate can only be true when the event's
    ``name`` is ``value`` (their guard); ``unguarded`` the others. An event evaluates the unguarded
    triggers plus those its values select, in position order: the rest are false without looking.
    """

    loaded_at: float
    entries: tuple[RulesetEntry, ...]
    labels: tuple[str, ...]
    unguarded: tuple[int, ...]
    index: dict[str, dict[str, tuple[int, ...]]]
    guarded_on: dict[str, tuple[int, ...]]  # every trigger guarded on a name (for non-string values)
    needs_role: bool

    def candidates(self, names: Mapping[str, Any]) -> list[int]:
        if not self.index:
            return list(self.unguarded)
        found = list(self.unguarded)
        for name, by_value in self.index.items():
            value = names.get(name)
            if isinstance(value, str):
                found.extend(by_value.get(value, ()))
            else:  # the guard is decided for strings only: evaluate these in full
                found.extend(self.guarded_on[name])
        found.sort()
        return found


def ruleset_build(triggers: list[Trigger], loaded_at: float) -> Ruleset:
    """Compile ``triggers`` (in evaluation order) and index them by their guard."""
    entries = tuple(
        RulesetEntry(
            trigger,
            *_compile(trigger),
            str(trigger.pk),
            trigger_scope(trigger),
        )
        for trigger in triggers
    )
    unguarded: list[int] = []
    index: dict[str, dict[str, list[int]]] = {}
    guarded_on: dict[str, list[int]] = {}
    for position, entry in enumerate(entries):
        guard = entry.predicate.guard if entry.predicate is not None else None
        if guard is None:
            unguarded.append(position)
            continue
        name, values = guard
        guarded_on.setdefault(name, []).append(position)
        for value in values:
            index.setdefault(name, {}).setdefault(value, []).append(position)
    return Ruleset(
        loaded_at=loaded_at,
        entries=entries,
        labels=tuple(entry.label for entry in entries),
        unguarded=tuple(unguarded),
        index={name: {v: tuple(ps) for v, ps in by_value.items()} for name, by_value in index.items()},
        guarded_on={name: tuple(ps) for name, ps in guarded_on.items()},
        needs_role=any(e.predicate is not None and "actor_role" in e.predicate.names for e in entries),
    )


_rulesets: dict[str, Ruleset] = {}
# Event types named in some timed trigger's ``unless`` (cached like the rulesets; key "" holds it).
_unless_types: dict[str, tuple[float, frozenset[str]]] = {}
# Whether any task can have a timer (key "" holds (loaded_at, answer)); cached like the rulesets.
_timers_possible: dict[str, tuple[float, bool]] = {}
# Set while this process has trigger changes that are not committed yet: a rollback would leave a cached
# ruleset holding triggers that never existed, so nothing is cached until such changes commit.
_uncommitted_changes = False


def _changes_committed() -> None:
    global _uncommitted_changes
    _uncommitted_changes = False
    _rulesets.clear()
    _unless_types.clear()
    _timers_possible.clear()


def ruleset_invalidate(**_: Any) -> None:
    """Forget the cached rulesets (connected to ``Trigger`` saves and deletes; services call it too)."""
    global _uncommitted_changes
    _rulesets.clear()
    _unless_types.clear()
    _timers_possible.clear()
    if transaction.get_connection().in_atomic_block:
        _uncommitted_changes = True
        transaction.on_commit(_changes_committed)


def ruleset_get(event_type: str) -> Ruleset:
    """Enabled triggers for ``event_type``, cached per process for ``AUTOMATION_TRIGGER_CACHE_SECONDS``."""
    now = time.monotonic()
    cached = _rulesets.get(event_type)
    if cached is not None and now - cached.loaded_at < settings.AUTOMATION_TRIGGER_CACHE_SECONDS:
        return cached
    triggers = list(
        Trigger.objects.filter(enabled=True, event_type=event_type)
        .select_related("wait_calendar")
        .order_by("position", "id")
    )
    ruleset = ruleset_build(triggers, now)
    if not _uncommitted_changes:
        _rulesets[event_type] = ruleset
    return ruleset


def unless_types_get() -> frozenset[str]:
    """Event types that cancel timers: those listed in any timed trigger's ``unless`` (enabled or not:
    a disabled trigger's pending timers are still cancelled). Cached like the rulesets."""
    now = time.monotonic()
    cached = _unless_types.get("")
    if cached is not None and now - cached[0] < settings.AUTOMATION_TRIGGER_CACHE_SECONDS:
        return cached[1]
    types: set[str] = set()
    for unless in Trigger.objects.filter(wait_minutes__isnull=False).values_list("unless", flat=True):
        if isinstance(unless, list):
            types.update(t for t in unless if isinstance(t, str))
    found = frozenset(types)
    if not _uncommitted_changes:
        _unless_types[""] = (now, found)
    return found


def timers_possible() -> bool:
    """Whether any task can have a timer: some trigger is timed (enabled or not: a disabled trigger's
    timers still show) or some timer exists (a trigger edited to wait no longer keeps its timers). Cached
    like the rulesets, so a task read without timed triggers pays no timers query; a first timed trigger
    created in another process shows its timers here within ``AUTOMATION_TRIGGER_CACHE_SECONDS``."""
    now = time.monotonic()
    cached = _timers_possible.get("")
    if cached is not None and now - cached[0] < settings.AUTOMATION_TRIGGER_CACHE_SECONDS:
        return cached[1]
    # Every timer belongs to a trigger (cascade): one query asks for a timed trigger or one with timers.
    found = Trigger.objects.filter(Q(wait_minutes__isnull=False) | Q(timers__isnull=False)).exists()
    if not _uncommitted_changes:
        _timers_possible[""] = (now, found)
    return found
