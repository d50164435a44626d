"""The reports app's statements (``reports.rollups``, ``reports.rebuild``, ``reports.selectors``).

Table names come from the caller's models; values are parameters (arrays binary, ``%b``).
"""

from __future__ import annotations

import functools

from django.db import models

_FOLD_COLUMNS = (
    "task_id, agency_id, service_area, task_type, facts_sequence, created_ms, steps, breached, sla"
)


@functools.cache
def folds_lock_sql(fold: type[models.Model]) -> str:
    # Why not the ORM: ``= ANY`` over one binary array, rows locked in key order (two dispatchers sharing a
    # task, an SLA breach beside its task's transition, never deadlock), plain tuples rather than models.
    return (
        f"SELECT {_FOLD_COLUMNS} FROM {fold._meta.db_table} WHERE task_id = ANY(%b) "  # noqa: S608
        "ORDER BY task_id FOR UPDATE"
    )


_FOLD_INPUT = (
    "SELECT * FROM unnest(%b::uuid[], %b::uuid[], %b::text[], %b::text[], %b::int[], %b::bigint[], "
    "%b::text[], %b::bool[], %b::text[]) AS t(task_id, agency_id, service_area, task_type, facts_sequence, "
    "created_ms, steps, breached, sla)"
)


@functools.cache
def batch_write_sql(fold: type[models.Model], rollup: type[models.Model]) -> str:
    # Why not the ORM: a batch's folds (new ones inserted, or nothing if another dispatcher inserted the
    # same task first: the caller counts and retries; the others updated, locked beforehand) and its
    # counters, in one round trip. Returns the number of folds inserted.
    table = fold._meta.db_table
    ctes, insert = _rollup_add_parts(rollup)
    return (
        f"WITH new AS ({_FOLD_INPUT}), old AS ({_FOLD_INPUT}), "  # noqa: S608
        f"inserted AS (INSERT INTO {table} ({_FOLD_COLUMNS}) SELECT task_id, agency_id, service_area, "
        "task_type, facts_sequence, created_ms, steps::jsonb, breached, sla::jsonb FROM new "
        "ON CONFLICT (task_id) DO NOTHING RETURNING 1), "
        f"updated AS (UPDATE {table} AS f SET agency_id = o.agency_id, service_area = o.service_area, "
        "task_type = o.task_type, facts_sequence = o.facts_sequence, created_ms = o.created_ms, "
        "steps = o.steps::jsonb, breached = o.breached, sla = o.sla::jsonb FROM old AS o "
        "WHERE f.task_id = o.task_id "
        "RETURNING 1), "
        f"{ctes}, added AS ({insert} RETURNING 1) "
        "SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM updated), (SELECT count(*) FROM added)"
    )


@functools.cache
def fold_upsert_sql(fold: type[models.Model]) -> str:
    # Why not the ORM: one INSERT … SELECT unnest(arrays) ON CONFLICT for the batch's tasks.
    table = fold._meta.db_table
    return (
        f"INSERT INTO {table} ({_FOLD_COLUMNS}) SELECT t.task_id, t.agency_id, t.service_area, "  # noqa: S608
        "t.task_type, t.facts_sequence, t.created_ms, t.steps::jsonb, t.breached, t.sla::jsonb "
        f"FROM ({_FOLD_INPUT}) AS t ON CONFLICT (task_id) DO UPDATE SET "
        "agency_id = EXCLUDED.agency_id, service_area = EXCLUDED.service_area, "
        "task_type = EXCLUDED.task_type, facts_sequence = EXCLUDED.facts_sequence, "
        "created_ms = EXCLUDED.created_ms, steps = EXCLUDED.steps, breached = EXCLUDED.breached, "
        "sla = EXCLUDED.sla"
    )


def _rollup_add_parts(rollup: type[models.Model]) -> tuple[str, str]:
    # The counters' deltas plus, for the ``backlog`` deltas, their sums per UTC day (``backlog_day``), added
    # in key order (concurrent batches lock shared rows in the same order): (CTEs, the INSERT).
    table = rollup._meta.db_table
    ctes = (
        "input AS (SELECT * FROM unnest(%b::text[], %b::timestamptz[], %b::uuid[], %b::text[], %b::text[], "
        "%b::text[], %b::bigint[]) AS d(metric, bucket, agency_id, service_area, task_type, state, value)), "
        "deltas AS (SELECT * FROM input UNION ALL SELECT 'backlog_day', date_trunc('day', bucket, 'UTC'), "
        "agency_id, service_area, task_type, state, sum(value)::bigint FROM input WHERE metric = 'backlog' "
        "GROUP BY 2, 3, 4, 5, 6 HAVING sum(value) <> 0)"
    )
    insert = (
        f"INSERT INTO {table} AS r (metric, bucket, agency_id, service_area, task_type, state, value) "  # noqa: S608
        "SELECT * FROM deltas ORDER BY metric, bucket, agency_id, service_area, task_type, state "
        "ON CONFLICT (metric, bucket, agency_id, service_area, task_type, state) "
        "DO UPDATE SET value = r.value + EXCLUDED.value"
    )
    return ctes, insert


@functools.cache
def rollup_add_sql(rollup: type[models.Model]) -> str:
    # Why not the ORM: adding deltas to counters (``value = value + EXCLUDED.value``) for a whole batch in
    # one statement.
    ctes, insert = _rollup_add_parts(rollup)
    return f"WITH {ctes} {insert}"


@functools.cache
def history_sql(events: type[models.Model]) -> str:
    # Why not the ORM: only the few payload fields the fold reads (not whole JSON documents), in task
    # order, streamed; a malformed task id in an SLA payload is skipped rather than failing the cast. An
    # SLA event's record id and ``breached`` are read only when of the JSON type the fold accepts.
    table = events._meta.db_table
    task = (
        "CASE WHEN event_type = ANY(%(sla)s) THEN (CASE WHEN payload ->> 'task_id' ~ "
        "'^[0-9a-fA-F-]{36}$' THEN (payload ->> 'task_id')::uuid END) ELSE aggregate_id END"
    )
    record = (
        "CASE WHEN event_type = ANY(%(sla)s) AND jsonb_typeof(payload -> 'sla_record_id') = 'string' "
        "THEN payload ->> 'sla_record_id' END"
    )
    breached = (
        "CASE WHEN event_type = ANY(%(sla)s) AND jsonb_typeof(payload -> 'breached') = 'boolean' "
        "THEN (payload -> 'breached')::boolean END"
    )
    return (
        f"SELECT task_id, event_type, sequence, (extract(epoch FROM occurred_at) * 1000)::bigint, "  # noqa: S608
        "agency_id, service_area, task_type, new_state, sla_record_id, breached FROM ("
        f"SELECT {task} AS task_id, event_type, sequence, occurred_at, payload ->> 'agency_id' AS agency_id, "
        "payload ->> 'service_area' AS service_area, payload ->> 'task_type' AS task_type, "
        f"payload ->> 'new_state' AS new_state, {record} AS sla_record_id, {breached} AS breached "
        f"FROM {table} "
        "WHERE event_type = ANY(%(types)s) AND (event_type = ANY(%(sla)s) OR aggregate_type = 'task')"
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
