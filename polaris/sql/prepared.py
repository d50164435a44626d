"""Server-side prepared statements for the hot paths' statements only.

A prepared statement is parsed and planned once per connection; after a few runs PostgreSQL may keep one
generic plan for it. That suits the statements ``polaris.sql.precompiled`` builds (they read and write rows by
key: a transition's two statements spend less time executing than being planned), and it does not suit
ORM queries in general: a generic plan cannot use a partial index whose predicate the query states with
parameters (``status = $1`` against ``WHERE status = 'running'``), so the SLA scan or the outbox claim
would fall back to scanning the table. Hence psycopg's automatic preparing stays off
(``PREPARE_ONLY_WHEN_ASKED``) and this cursor prepares exactly the registered statements.

``settings.py`` installs the cursor when ``DB_SERVER_SIDE_BINDING`` is on (client-side binding cannot
prepare). Django loads nothing else from here, so this module imports only Django's backend.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql.base import ServerBindingCursor

# psycopg prepares a statement after this many runs on a connection: never, unless a cursor asks.
PREPARE_ONLY_WHEN_ASKED = 2**31 - 1

_hot_statements: set[str] = set()


def hot_statement(sql: str) -> str:
    """Register ``sql`` to be prepared by every connection that runs it; returns it unchanged."""
    _hot_statements.add(sql)
    return sql


class HotStatementCursor(ServerBindingCursor):
    """Django's server-binding cursor that prepares the registered hot statements (and nothing else)."""

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, **kwargs: Any) -> Any:
        if prepare is None and isinstance(query, str) and query in _hot_statements:
            prepare = True
        return super().execute(query, params, prepare=prepare, **kwargs)  # type: ignore[misc]
