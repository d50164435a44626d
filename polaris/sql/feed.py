"""The event feed's statements (``outbox.feed``): position rounds and pages.

Table names come from the caller's models (``feed_statements``); values are parameters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.db import models

_FROM_WATERMARK = (
    "(e.xid, e.sequence, e.id) >= (%(watermark)s::bigint, %(resume_sequence)s::integer, %(resume)s::uuid)"
)


@dataclass(frozen=True)
class FeedStatements:
    """The statements of one position round, for the given event, feed-entry and feed-state tables."""

    state_ensure: str
    state_lock: str
    assign: str
    watermark: str
    page_head: str
    envelope: str


@functools.cache
def feed_statements(
    events_model: type[models.Model], feed_model: type[models.Model], state_model: type[models.Model]
) -> FeedStatements:
    events = events_model._meta.db_table
    feed = feed_model._meta.db_table
    state = state_model._meta.db_table
    # Why not the ORM: ``ON CONFLICT DO NOTHING`` for the one state row, without a savepoint.
    state_ensure = (
        f"INSERT INTO {state} (id, watermark, resume_sequence, resume_id) "  # noqa: S608
        "VALUES (1, 0, 0, '00000000-0000-0000-0000-000000000000') ON CONFLICT (id) DO NOTHING"
    )
    # Why not the ORM: the snapshot's xmin (``pg_current_snapshot``) read in the locking statement itself.
    xmin = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    state_lock = f"SELECT watermark, resume_sequence, resume_id, {xmin} FROM {state} WHERE id = 1 FOR UPDATE"  # noqa: S608
    unpositioned = f"NOT EXISTS (SELECT 1 FROM {feed} AS f WHERE f.event_id = e.id)"  # noqa: S608
    # Why not the ORM: INSERT … SELECT with window functions over a row-value range and a bounded CTE.
    assign = f"""
WITH head AS (SELECT coalesce(max(position), 0) AS p FROM {feed}),
picked AS (
    SELECT e.id, e.aggregate_type, e.aggregate_id, e.sequence, e.occurred_at
      FROM {events} AS e
     WHERE {_FROM_WATERMARK} AND {unpositioned}
     ORDER BY e.xid, e.sequence, e.id
     LIMIT %(limit)s::integer
),
earlier AS (  -- only when the round hit its bound: the unpositioned predecessors of what it took
    SELECT e.id, e.aggregate_type, e.aggregate_id, e.sequence, e.occurred_at
      FROM (SELECT aggregate_type, aggregate_id, max(sequence) AS last FROM picked GROUP BY 1, 2) AS a
      JOIN {events} AS e
        ON e.aggregate_type = a.aggregate_type AND e.aggregate_id = a.aggregate_id AND e.sequence < a.last
     WHERE (SELECT count(*) FROM picked) >= %(limit)s::integer AND {_FROM_WATERMARK} AND {unpositioned}
),
candidates AS (
    SELECT b.id, b.aggregate_type, b.aggregate_id, b.sequence,
           max(b.occurred_at) OVER (
               PARTITION BY b.aggregate_type, b.aggregate_id ORDER BY b.sequence
           ) AS settled_at
      FROM (SELECT * FROM picked UNION SELECT * FROM earlier) AS b
)
INSERT INTO {feed} (position, event_id)
SELECT head.p + row_number() OVER (ORDER BY c.settled_at, c.aggregate_type, c.aggregate_id, c.sequence), c.id
  FROM candidates AS c, head
"""  # noqa: S608
    # Why not the ORM: an UPDATE of a row value from a UNION ALL subquery ordered by a row value.
    # Up to the first event still unpositioned in (xid, sequence, id) order, at most (xmin, 0, nil): never
    # backwards, as an unpositioned event has a key >= the old watermark, and an old watermark with resume
    # columns came from an event whose xid was below the xmin of its round.
    watermark = f"""
UPDATE {state} SET (watermark, resume_sequence, resume_id) = (
    SELECT t.xid, t.sequence, t.id FROM (
        (SELECT e.xid, e.sequence, e.id FROM {events} AS e
          WHERE {_FROM_WATERMARK} AND {unpositioned}
          ORDER BY e.xid, e.sequence, e.id
          LIMIT 1)
        UNION ALL
        SELECT %(xmin)s::bigint, 0, '00000000-0000-0000-0000-000000000000'::uuid
    ) AS t
    ORDER BY t.xid, t.sequence, t.id
    LIMIT 1
) WHERE id = 1
"""  # noqa: S608

    # Why not the ORM: the envelope as JSON text built by PostgreSQL (passed through, never parsed), and the
    # head position from the same snapshot through a LATERAL join.
    page_head = f"""
    SELECT head.p, page.*
      FROM (SELECT coalesce(max(position), 0) AS p FROM {feed}) AS head
      LEFT JOIN LATERAL (
           SELECT f.position, {{envelope}} AS envelope
             FROM {feed} AS f JOIN {events} AS e ON e.id = f.event_id
            WHERE {{conditions}}
            ORDER BY f.position
            LIMIT %(limit)s::integer
      ) AS page ON true
    """  # noqa: S608
    return FeedStatements(
        state_ensure=state_ensure,
        state_lock=state_lock,
        assign=assign,
        watermark=watermark,
        page_head=page_head,
        envelope=ENVELOPE,
    )


# The event envelope (``OutboxEvent.envelope``) plus the feed position, as JSON built in SQL.
ENVELOPE = """json_build_object(
    'position', f.position, 'id', e.id, 'event_type', e.event_type, 'aggregate_type', e.aggregate_type,
    'aggregate_id', e.aggregate_id, 'sequence', e.sequence, 'occurred_at', e.occurred_at,
    'actor_id', e.actor_id, 'correlation_id', e.correlation_id, 'causation_id', e.causation_id,
    'depth', e.depth, 'payload', e.payload)::text"""


# The page's conditions, by filter.
PAGE_WINDOW = ["f.position > %(after)s::bigint", "f.position <= %(after)s::bigint + %(window)s::bigint"]
PAGE_AGENCY = "e.payload ->> 'agency_id' = %(agency_id)s::text"
PAGE_CLIENT = "e.aggregate_type = 'task' AND e.payload ->> 'client_id' = %(client_id)s::text"
PAGE_EVENT_TYPES = "e.event_type = ANY(%(event_types)s)"
PAGE_AGGREGATE_TYPE = "e.aggregate_type = %(aggregate_type)s"


def feed_page_sql(statements: FeedStatements, conditions: list[str]) -> str:
    """A page's statement with ``conditions`` (of the ``PAGE_*`` above) joined by AND."""
    return statements.page_head.format(envelope=statements.envelope, conditions=" AND ".join(conditions))
