"""The set-based append: advance a batch of aggregates and write one event for each, in one statement.

The statement takes the aggregate model and the event model from its caller (``outbox.append``), so the
ground names no app's table.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections, models
from django.db.models import NOT_PROVIDED

# Why not the ORM: an UPDATE from a JSON batch (per-row values) joined to the INSERT … SELECT of the events,
# written only for the rows the UPDATE changed, is one data-modifying CTE; the ORM has neither.
# The batch arrives as one JSON document, a row per aggregate: its id, the version it was read at, its
# event's sequence and payload, and the new values of the changed columns (``c0``, ``c1``, …). One text
# parameter, not an array per column: psycopg escapes array elements one by one in Python, which cost
# more than the whole SLA scan.
_ADVANCE_SQL = """
WITH batch AS (
    SELECT * FROM jsonb_to_recordset(%(batch)s::jsonb) AS b({batch_columns})
),
updated AS (
    UPDATE {record} AS r
       SET {assignments}
      FROM batch b
     WHERE r.{id} = b.id AND {conditions} AND r.{version} = b.claimed_version
 RETURNING r.{id} AS id
),
written AS (
    INSERT INTO {outbox} ({columns})
    SELECT {values}
      FROM batch b
      JOIN updated u ON u.id = b.id
    RETURNING 1
)
SELECT count(*) FROM written
"""

# The event columns the statement fills from the batch and the parameters; any other column of the event
# model gets its model default (so a column added later does not break the statement), and those with a
# database default (the writer's transaction id) are the database's to fill.
_EVENT_VALUES = {
    "id": "gen_random_uuid()",
    "event_type": "%(event_type)s",
    "aggregate_type": "%(aggregate_type)s",
    "aggregate_id": "b.id",
    "sequence": "b.sequence",
    "occurred_at": "%(now)s",
    "next_attempt_at": "%(now)s",
    "actor_id": "NULL",
    "correlation_id": "%(correlation_id)s",
    "causation_id": "%(causation_id)s",
    "depth": "%(depth)s",
    "payload": "b.payload",
}


def _column(model: type[models.Model], name: str, alias: str) -> tuple[str, str]:
    """A field's quoted column and its type (``uuid``, ``timestamp with time zone``, …)."""
    connection = connections[alias]
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    assert field.column
    return connection.ops.quote_name(field.column), str(field.db_type(connection))


@functools.cache
def aggregates_advance_sql(
    model: type[models.Model],
    event_model: type[models.Model],
    changed: tuple[str, ...],
    where: tuple[str, ...],
    alias: str,
) -> tuple[str, dict[str, Any]]:
    """The statement for aggregates of ``model`` whose advance writes the fields ``changed`` (batch columns
    ``c0``…), guarded by ``version = claimed_version`` and equality on the fields ``where`` (parameters
    ``w0``…); and the default parameters of the event columns it does not fill itself."""
    connection = connections[alias]
    id_column, id_type = _column(model, "id", alias)
    version_column, version_type = _column(model, "version", alias)
    batch_columns = [f"id {id_type}", f"claimed_version {version_type}", f"sequence {version_type}"]
    batch_columns.append("payload jsonb")
    assignments = []
    for position, name in enumerate(changed):
        column, column_type = _column(model, name, alias)
        batch_columns.append(f"c{position} {column_type}")
        assignments.append(f"{column} = b.c{position}")
    conditions = [f"r.{_column(model, name, alias)[0]} = %(w{i})s" for i, name in enumerate(where)]
    columns, values, params = [], [], {}
    for field in event_model._meta.concrete_fields:
        if field.db_default is not NOT_PROVIDED:
            continue
        columns.append(connection.ops.quote_name(field.column or field.attname))
        if field.attname in _EVENT_VALUES:
            values.append(_EVENT_VALUES[field.attname])
        else:
            key = f"default_{field.attname}"
            params[key] = field.get_db_prep_save(field.get_default(), connection)
            values.append(f"%({key})s")
    sql = _ADVANCE_SQL.format(
        batch_columns=", ".join(batch_columns),
        record=connection.ops.quote_name(model._meta.db_table),
        id=id_column,
        conditions=" AND ".join(conditions) or "TRUE",
        version=version_column,
        assignments=", ".join(assignments),
        outbox=connection.ops.quote_name(event_model._meta.db_table),
        columns=", ".join(columns),
        values=", ".join(values),
    )
    return sql, params
