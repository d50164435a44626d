"""The reports app's statements (``reports.rollups``, ``reports.rebuild``, ``reports.selectors``).

Table names come from the caller's models; values are parameters (arrays binary, ``%b``).
"""

from __future__ import annotations

import functools

from django.db import models


@functools.cache
def fold_lock_sql() -> str:
    # Why not the ORM: transaction-scoped advisory locks, taken in the order given (sorted by the caller),
    # so two dispatchers folding events of the same task serialise without deadlocking.
    return (
        "SELECT count(pg_advisory_xact_lock(key)) FROM "
        "(SELECT key FROM unnest(%b::bigint[]) WITH ORDINALITY AS t(key, n) ORDER BY n) AS ordered"
    )


@functools.cache
def fold_upsert_sql(fold: type[models.Model]) -> str:
    # Why not the ORM: one INSERT … SELECT unnest(arrays) ON CONFLICT for the batch's tasks.
    table = fold._meta.db_table
    return (
        f"INSERT INTO {table} (task_id, agency_id, service_area, task_type, facts_sequence, created_ms, "  # noqa: S608
        "steps, breached) SELECT t.task_id, t.agency_id, t.service_area, t.task_type, t.facts_sequence, "
        "t.created_ms, t.steps::jsonb, t.breached FROM unnest(%b::uuid[], %b::uuid[], %b::text[], "
        "%b::text[], %b::int[], %b::bigint[], %b::text[], %b::bool[]) AS t(task_id, agency_id, service_area, "
        "task_type, facts_sequence, created_ms, steps, breached) ON CONFLICT (task_id) DO UPDATE SET "
        "agency_id = EXCLUDED.agency_id, service_area = EXCLUDED.service_area, "
        "task_type = EXCLUDED.task_type, facts_sequence = EXCLUDED.facts_sequence, "
        "created_ms = EXCLUDED.created_ms, steps = EXCLUDED.steps, breached = EXCLUDED.breached"
    )


@functools.cache
def rollup_add_sql(rollup: type[models.Model]) -> str:
    # Why not the ORM: adding deltas to counters (``value = value + EXCLUDED.value``) for a whole batch in
    # one statement; rows come sorted by key so concurrent batches lock shared rows in the same order.
    table = rollup._meta.db_table
    return (
        f"INSERT INTO {table} AS r (metric, bucket, agency_id, service_area, task_type, state, value) "  # noqa: S608
        "SELECT * FROM unnest(%b::text[], %b::timestamptz[], %b::uuid[], %b::text[], %b::text[], %b::text[], "
        "%b::bigint[]) ON CONFLICT (metric, bucket, agency_id, service_area, task_type, state) "
        "DO UPDATE SET value = r.value + EXCLUDED.value"
    )


@functools.cache
def history_sql(events: type[models.Model]) -> str:
    # Why not the ORM: only the few payload fields the fold reads (not whole JSON documents), in task
    # order, streamed; a malformed task id in an SLA payload is skipped rather than failing the cast.
    table = events._meta.db_table
    task = (
        "CASE WHEN event_type = %(breach)s THEN (CASE WHEN payload ->> 'task_id' ~ "
        "'^[0-9a-fA-F-]{36}$' THEN (payload ->> 'task_id')::uuid END) ELSE aggregate_id END"
    )
    return (
        f"SELECT task_id, event_type, sequence, (extract(epoch FROM occurred_at) * 1000)::bigint, "  # noqa: S608
        "agency_id, service_area, task_type, new_state FROM ("
        f"SELECT {task} AS task_id, event_type, sequence, occurred_at, payload ->> 'agency_id' AS agency_id, "
        "payload ->> 'service_area' AS service_area, payload ->> 'task_type' AS task_type, "
        f"payload ->> 'new_state' AS new_state FROM {table} "
        "WHERE event_type = ANY(%(types)s) AND (event_type = %(breach)s OR aggregate_type = 'task')"
        ") AS h WHERE task_id IS NOT NULL ORDER BY task_id"
    )


def report_sql(rollup: type[models.Model], *, conditions: list[str], shift_hours: int = 0) -> str:
    # Why not the ORM: grouping UTC hours into local days or weeks (``AT TIME ZONE``, ``date_trunc``).
    table = rollup._meta.db_table
    where = " AND ".join(
        ["metric = ANY(%(metrics)s)", "bucket >= %(start)s", "bucket < %(end)s", *conditions]
    )
    shifted = f"bucket - interval '{int(shift_hours)} hour'" if shift_hours else "bucket"
    return (
        f"SELECT date_trunc(%(unit)s, ({shifted}) AT TIME ZONE %(tz)s) AS local, metric, state, "  # noqa: S608
        f"sum(value) FROM {table} WHERE {where} GROUP BY 1, 2, 3"
    )


def report_total_sql(rollup: type[models.Model], *, conditions: list[str]) -> str:
    # Why not the ORM: one grouped sum over two index ranges (whole UTC days, then the hours after them).
    table = rollup._meta.db_table
    extra = "".join(f" AND {condition}" for condition in conditions)
    return (
        f"SELECT state, sum(value) FROM (SELECT state, value FROM {table} "  # noqa: S608
        f"WHERE metric = %(day_metric)s AND bucket < %(day)s{extra} "
        f"UNION ALL SELECT state, value FROM {table} "
        f"WHERE metric = %(hour_metric)s AND bucket >= %(day)s AND bucket < %(until)s{extra}) AS d "
        "GROUP BY state"
    )


def tables_clear_sql(*tables: type[models.Model]) -> list[str]:
    # Why not the ORM: a table lock that holds the handler's writes back (readers carry on) while the
    # rebuild replaces the rows; ``DELETE`` rather than ``TRUNCATE``, which would block readers too.
    names = [table._meta.db_table for table in tables]
    return [f"LOCK TABLE {', '.join(names)} IN EXCLUSIVE MODE", *(f"DELETE FROM {name}" for name in names)]  # noqa: S608
