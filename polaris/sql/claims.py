"""The lease statements of ``polaris.leases.Lease``: claim a batch of due rows, renew claims.

The table and column names come from the model the lease is for (``Model._meta``); values are parameters.
"""

from __future__ import annotations

import functools

from django.db import models

# Why not the ORM: it cannot UPDATE … RETURNING the rows it picked with FOR UPDATE SKIP LOCKED in a
# subquery, in one statement. Backed by the due index (``next_attempt_at`` WHERE status IN free/held) for the
# scan and, with a stream rule, by an index on the stream columns for the "no earlier undone row of this
# stream" probe. ``= ANY(ARRAY(…))`` rather than ``IN (…)``: with IN the planner hash-joins the whole table
# (a sequential scan per claim); with an array it updates the picked rows through the primary key.
# Columns are named, not ``claimed.*``: a prepared ``*`` fails ("cached plan must not change result
# type") once a migration adds a column.
_CLAIM_SQL = """
UPDATE {table} AS claimed
   SET status = %(processing)s,
       attempts = claimed.attempts + 1,
       next_attempt_at = %(lease_until)s,
       locked_until = %(lease_until)s
 WHERE claimed.id = ANY(ARRAY(
        SELECT due.id
          FROM {table} AS due
         WHERE due.status IN (%(pending)s, %(processing)s)
           AND due.next_attempt_at <= %(now)s{held_back}
         ORDER BY due.next_attempt_at
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED
       ))
RETURNING {columns}
"""

# The per-stream rule: only the first undone row of each stream (an earlier free or held row of the same
# stream holds later ones back).
_HELD_BACK = """
           AND NOT EXISTS (
                SELECT 1
                  FROM {table} AS earlier
                 WHERE earlier.{kind} = due.{kind}
                   AND earlier.{key} = due.{key}
                   AND earlier.{position} < due.{position}
                   AND earlier.status IN (%(pending)s, %(processing)s)
           )"""

# Why not the ORM: renewing many claims, each fenced by its own ``attempts``, is a join against arrays
# (``unnest``), one statement for a batch; the ORM would need one UPDATE per row.
_RENEW_SQL = """
UPDATE {table} AS claimed
   SET next_attempt_at = %(lease_until)s,
       locked_until = %(lease_until)s
  FROM unnest(%(ids)b::{pk_type}[], %(attempts)b::integer[]) AS mine(id, attempts)
 WHERE claimed.id = mine.id
   AND claimed.attempts = mine.attempts
   AND claimed.status = %(processing)s
"""


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    assert field.column
    return field.column


@functools.cache
def lease_claim_sql(model: type[models.Model], stream: tuple[str, str, str] | None = None) -> str:
    """Claim up to ``%(limit)s`` due rows of ``model`` (free and due, or held with a lapsed lease), oldest
    first, skipping rows another claimer has locked; with ``stream=(kind, key, position)`` fields, only the
    first undone row of each stream. Parameters: ``pending``, ``processing``, ``now``, ``lease_until``,
    ``limit``. Returns every concrete column of the claimed rows."""
    table = model._meta.db_table
    held_back = ""
    if stream is not None:
        kind, key, position = (_column(model, name) for name in stream)
        held_back = _HELD_BACK.format(table=table, kind=kind, key=key, position=position)
    columns = ", ".join(f"claimed.{field.column}" for field in model._meta.concrete_fields)
    return _CLAIM_SQL.format(table=table, held_back=held_back, columns=columns)


@functools.cache
def lease_renew_sql(model: type[models.Model], pk_type: str) -> str:
    """Extend the claims ``(ids, attempts)`` still held (status ``%(processing)s``) to ``%(lease_until)s``."""
    return _RENEW_SQL.format(table=model._meta.db_table, pk_type=pk_type)
