"""The backtest's read: one pass over a trigger's events in a window, evaluating its predicate.

Only the columns the predicate reads are selected (plus the id and the UTC day as an integer); a
``payload["a"]["b"]`` it reads comes as that path's JSON text, and the whole payload only when the
predicate uses ``payload`` some other way (``CompiledPredicate.payload_paths`` is None). Events with the
same facts get the same answer, so each distinct fact tuple is evaluated once: for untimed triggers
PostgreSQL groups the events by (day, facts) and counts them (``_scan_grouped``); otherwise a server-side
cursor streams tuples in chunks (never model instances) and the answers are remembered per fact tuple.
Results equal evaluating event by event.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction

from outbox.models import OutboxEvent
from polaris.accounts.models import User
from polaris.sql.backtest import (
    AGENCY,
    DAY,
    PAYLOAD_KEY,
    PAYLOAD_PATH,
    WINDOW,
    grouped_sql,
    sample_sql,
    scan_sql,
    statement_timeout_sql,
)

from .models import Trigger
from .predicates import EVALUATION_ERRORS, PredicateError
from .predicates import PAYLOAD_NAMES as _PAYLOAD_NAMES
from .ruleset import trigger_scope

SAMPLE_SIZE = 20
CHUNK = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _rss_bytes() -> int:
    """This process's resident memory now (Linux: /proc/self/statm); elsewhere its peak, which still
    only grows, so a growth bound measured on it errs on the side of stopping early."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


class BacktestLimits:
    """The backtest's wall-clock and memory bounds: ``BACKTEST_MAX_SECONDS`` from ``started`` and
    ``BACKTEST_MAX_MEMORY_MB`` of growth of the process's resident memory. ``exceeded()`` names the one
    that was passed (``"time"``/``"memory"``), else None; memory is sampled every ``MEMORY_EVERY`` calls."""

    MEMORY_EVERY = 256

    def __init__(self, started: float) -> None:
        self.deadline = started + settings.BACKTEST_MAX_SECONDS
        self.rss_limit = _rss_bytes() + settings.BACKTEST_MAX_MEMORY_MB * 1024 * 1024
        self.calls = 0

    def exceeded(self) -> str | None:
        if time.monotonic() > self.deadline:
            return "time"
        self.calls += 1
        if self.calls % self.MEMORY_EVERY == 0 and _rss_bytes() > self.rss_limit:
            return "memory"
        return None


def _projection(compiled: Any) -> tuple[list[str], list[list[Any]], list[Any]]:
    """The columns a predicate reads: SQL expressions, each one's parameters, and the name each one fills
    (``actor_id`` fills ``actor_role`` through the users' roles; a key path fills that path of
    ``payload``). The whole payload is not among them."""
    names_used = compiled.names
    whole_payload = "payload" in names_used and compiled.payload_paths is None
    exprs: list[str] = []
    params: list[list[Any]] = []
    slots: list[Any] = []
    for name in ("aggregate_type", "depth"):
        if name in names_used:
            exprs.append(name)
            params.append([])
            slots.append(name)
    if "actor_role" in names_used:
        exprs.append("actor_id")
        params.append([])
        slots.append("actor_id")
    for key in _PAYLOAD_NAMES:
        if key in names_used and not whole_payload:  # else read from the whole payload
            exprs.append(PAYLOAD_KEY)
            params.append([key])
            slots.append(key)
    if not whole_payload:
        for path in sorted(compiled.payload_paths or ()):  # JSON text, decoded once per distinct fact tuple
            exprs.append(PAYLOAD_PATH)
            params.append([list(path)])
            slots.append(path)
    return exprs, params, slots


def _where(trigger: Trigger, since: datetime, until: datetime) -> tuple[str, list[Any]]:
    where = WINDOW
    params: list[Any] = [trigger.event_type, since, until]
    scope = trigger_scope(trigger)
    if scope is not None:  # automation.ruleset.scope_admits, stated in SQL
        where += AGENCY
        params.append(scope)
    return where, params


class _Names:
    """Fills the predicate's names from a row's projected facts (the rest of them ``None``)."""

    def __init__(self, trigger: Trigger, slots: list[Any], roles: dict[int, str]) -> None:
        self.base: dict[str, Any] = {name: None for name in _PAYLOAD_NAMES}
        self.base.update(
            event_type=trigger.event_type, payload={}, actor_role=None, aggregate_type=None, depth=0
        )
        self.slots, self.roles = slots, roles
        self.paths = any(isinstance(slot, tuple) for slot in slots)

    def __call__(self, facts: tuple) -> dict[str, Any]:
        names = self.base.copy()
        if self.paths:
            names["payload"] = {}
        for name, value in zip(self.slots, facts, strict=True):
            if isinstance(name, tuple):  # a payload key path, as JSON text (None: absent)
                _path_set(names["payload"], name, None if value is None else json.loads(value))
            elif name == "actor_id":
                names["actor_role"] = "system" if value is None else self.roles.get(value)
            else:
                names[name] = value
        return names


def _path_set(payload: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        payload = payload.setdefault(key, {})
    payload[path[-1]] = value


def backtest_scan(trigger: Trigger, compiled: Any, since: datetime, until: datetime, started: float) -> dict:
    """One pass over the trigger's events in the window: evaluate, count per day, keep matches.

    Only the columns the predicate reads are selected (plus the id and the UTC day as an integer), so
    the driver parses as few values per row as possible; the rest of a match is read afterwards by id.
    Rows with the same facts give the same answer, so unless the predicate reads the whole payload each
    distinct fact tuple is evaluated once: grouped and counted per day in PostgreSQL when the matches
    themselves are not needed (untimed triggers), memoised while streaming otherwise."""
    names_used = compiled.names
    full_payload = "payload" in names_used and compiled.payload_paths is None
    roles = dict(User.objects.values_list("id", "role")) if "actor_role" in names_used else {}
    exprs, params_each, slots = _projection(compiled)
    expr_params = [param for params in params_each for param in params]
    make_names = _Names(trigger, slots, roles)
    where, where_params = _where(trigger, since, until)
    if not full_payload and trigger.wait_minutes is None:
        grouped = _scan_grouped(compiled, exprs, params_each, where, where_params, make_names, started)
        if grouped is not None:
            return grouped
    columns = ["id::text", DAY, *exprs, *(["payload"] if full_payload else [])]
    sql = scan_sql(OutboxEvent._meta.db_table, columns, where)
    evaluate = compiled.evaluate_raw
    per_day: dict[int, int] = defaultdict(int)
    matches: list[tuple[str, dict]] = []
    sample_ids: list[str] = []
    evaluated = matched = errors = 0
    max_events, limits = settings.BACKTEST_MAX_EVENTS, BacktestLimits(started)
    stopped: str | None = None  # which bound stopped the read: events, time or memory
    read_until = None
    keep_matches = trigger.wait_minutes is not None
    failures = (PredicateError, *EVALUATION_ERRORS)
    facts_end = 2 + len(exprs)
    known: dict[tuple, bool | None] = {}  # facts -> hit (None: evaluation error); unused for full payloads
    connection.ensure_connection()
    with connection.connection.cursor(name=f"backtest_{uuid.uuid4().hex}") as cursor:
        cursor.itersize = CHUNK
        cursor.execute(sql, [*expr_params, *where_params])
        while stopped is None:
            rows = cursor.fetchmany(CHUNK)
            if not rows:
                break
            for row in rows:
                facts = row[2:facts_end]
                names = None
                if full_payload:  # inline: every row is evaluated here
                    names = make_names(facts) if facts else make_names.base.copy()
                    payload = row[facts_end]
                    if isinstance(payload, str | bytes):  # Django hands jsonb over as text
                        payload = json.loads(payload)
                    if not isinstance(payload, dict):
                        payload = {}
                    names["payload"] = payload
                    for key in _PAYLOAD_NAMES:
                        names[key] = payload.get(key)
                    hit = _hit(evaluate, names, failures)
                    stop = limits.exceeded()
                elif facts in known:
                    hit, stop = known[facts], None
                else:
                    names = make_names(facts)
                    hit = known[facts] = _hit(evaluate, names, failures)
                    stop = limits.exceeded()
                evaluated += 1
                if hit is None:
                    errors += 1
                elif hit:
                    matched += 1
                    per_day[row[1]] += 1
                    if keep_matches:
                        matches.append((row[0], names if names is not None else make_names(facts)))
                    if len(sample_ids) < SAMPLE_SIZE:
                        sample_ids.append(row[0])
                if evaluated >= max_events:
                    stop = "events"
                if stop:
                    stopped, read_until = stop, _EPOCH + timedelta(days=row[1])
                    break
            else:
                if stop := limits.exceeded():
                    stopped, read_until = stop, _EPOCH + timedelta(days=rows[-1][1])
    return _scanned(
        per_day,
        sample_ids,
        evaluated=evaluated,
        matched=matched,
        errors=errors,
        matches=matches,
        truncated=stopped is not None,
        truncated_reason=stopped,
        read_until=read_until,
    )


def _hit(evaluate: Any, names: dict[str, Any], failures: tuple) -> bool | None:
    """The predicate's answer, None when its evaluation failed."""
    try:
        return bool(evaluate(names))
    except failures:
        return None


def _scanned(per_day: dict[int, int], sample_ids: list, **counts: Any) -> dict:
    """The scan's answer: per-day counts by date, sample ids as UUIDs, and the counts as given."""
    return {
        "per_day": {_EPOCH.date() + timedelta(days=day): count for day, count in per_day.items()},
        "sample_ids": [uuid.UUID(str(i)) for i in sample_ids],
        **counts,
    }


def _scan_grouped(
    compiled: Any,
    exprs: list[str],
    params_each: list[list[Any]],
    where: str,
    where_params: list[Any],
    make_names: _Names,
    started: float,
) -> dict | None:
    """The scan as one ``GROUP BY`` (day, facts) over at most ``BACKTEST_MAX_EVENTS`` rows: the predicate
    runs once per distinct fact tuple and PostgreSQL does the counting. None when it did not finish within
    ``BACKTEST_MAX_SECONDS`` (the caller's streaming scan then answers, truncated)."""
    sql = grouped_sql(OutboxEvent._meta.db_table, exprs, where)
    remaining_ms = max(int((started + settings.BACKTEST_MAX_SECONDS - time.monotonic()) * 1000), 1)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement_timeout_sql(), [str(remaining_ms)])
            expr_params = [param for params in params_each for param in params]
            cursor.execute(sql, [*expr_params, *where_params, settings.BACKTEST_MAX_EVENTS])
            groups = cursor.fetchall()
            cursor.execute(statement_timeout_sql(), [str(int(settings.BACKTEST_MAX_SECONDS * 1000) + 5000)])
    except OperationalError:  # statement_timeout: too much history for the time bound
        return None
    evaluate, failures = compiled.evaluate_raw, (PredicateError, *EVALUATION_ERRORS)
    known: dict[tuple, bool | None] = {}
    per_day: dict[int, int] = defaultdict(int)
    evaluated = matched = errors = 0
    hits: list[tuple] = []
    limits, stopped = BacktestLimits(started), None
    for row in groups:
        day, facts, count = row[0], tuple(row[1:-1]), row[-1]
        if facts not in known:
            if stopped := limits.exceeded():  # what was counted so far is the answer
                break
            known[facts] = _hit(evaluate, make_names(facts), failures)
            if known[facts]:
                hits.append(facts)
        evaluated += count
        if known[facts] is None:
            errors += count
        elif known[facts]:
            matched += count
            per_day[day] += count
    if stopped is None and evaluated >= settings.BACKTEST_MAX_EVENTS:
        stopped = "events"
    truncated = stopped is not None
    read_until = _EPOCH + timedelta(days=max(row[0] for row in groups)) if stopped == "events" else None
    sample_ids = _sample_ids(exprs, params_each, where, where_params, hits[:SAMPLE_SIZE])
    return _scanned(
        per_day,
        sample_ids,
        evaluated=evaluated,
        matched=matched,
        errors=errors,
        matches=[],
        truncated=truncated,
        truncated_reason=stopped,
        read_until=read_until,
    )


def _sample_ids(
    exprs: list[str], params_each: list[list[Any]], where: str, where_params: list, hits: list[tuple]
) -> list:
    """Up to ``SAMPLE_SIZE`` ids of events whose facts are among ``hits``."""
    if not hits:
        return []
    params: list[Any] = list(where_params)
    for facts in hits:
        for expr_params, value in zip(params_each, facts, strict=True):
            params += [*expr_params, value]
    sql = sample_sql(OutboxEvent._meta.db_table, exprs, where, len(hits), SAMPLE_SIZE)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]
