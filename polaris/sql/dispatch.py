"""The dispatcher's batch statements (``outbox.dispatcher``): the ledger probe and insert, the settle.

Table names come from the caller's models; values are parameters. Array parameters go as ``%b``
(binary): psycopg's text format quotes every element, several times slower.
"""

from __future__ import annotations

import functools

from django.db import models


@functools.cache
def ledger_handled_sql(ledger: type[models.Model]) -> str:
    # Why not the ORM: ``= ANY`` over one binary array parameter; ``__in`` binds one parameter per id.
    return f"SELECT event_id FROM {ledger._meta.db_table} WHERE handler = %s AND event_id = ANY(%b)"  # noqa: S608


@functools.cache
def ledger_insert_sql(ledger: type[models.Model]) -> str:
    # Why not the ORM: one INSERT … SELECT unnest(array) is far cheaper than bulk_create's per-row objects.
    return (
        f"INSERT INTO {ledger._meta.db_table} (handler, event_id, handled_at) "
        "SELECT %s, unnest(%b::uuid[]), %s"
    )


@functools.cache
def settle_done_sql(events: type[models.Model]) -> str:
    # Why not the ORM: ``id = ANY`` over one binary array parameter (see ``ledger_handled_sql``).
    return (
        f"UPDATE {events._meta.db_table} SET status = %s, dispatched_at = %s, locked_until = NULL, "  # noqa: S608
        "last_error = '' WHERE id = ANY(%b) AND status = %s"
    )
