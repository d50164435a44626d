"""Telling an outage from a bug: is this exception "the database or the broker is unavailable"?

An outage is answered ``503 SERVICE_UNAVAILABLE`` with ``Retry-After`` (clients and load balancers retry
later, as ``/readyz`` already tells them); anything else stays a ``500`` and is logged as a bug.

Unavailable means the dependency could not be reached or went away, not that a query was wrong:
- PostgreSQL (psycopg, and Django's wrappers of it): no connection or a lost one (no SQLSTATE at all:
  refused, reset, "server closed the connection unexpectedly"), SQLSTATE class ``08`` (connection
  exception), ``57P01`` to ``57P03`` (admin shutdown, crash shutdown, cannot connect now), ``53300`` (too many
  connections) and ``25006`` (read-only transaction: a failover left us on a standby). A Django
  ``InterfaceError`` (a connection already closed) is one too.
- The broker: kombu's ``OperationalError`` (publishing failed), redis-py's connection, timeout, busy-loading
  and read-only (failover) errors, and the OS-level ``ConnectionError`` family.

Django wraps psycopg's error and chains it as ``__cause__``; the chain is followed a few links deep.
"""

from __future__ import annotations

import django.db
import psycopg
import redis.exceptions
from django.conf import settings

_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "25006"})
_BROKER_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # includes redis' TimeoutError-free connection failures
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    ConnectionError,  # builtins: refused, reset, aborted, broken pipe
)
_CHAIN_DEPTH = 5


def _sqlstate_unavailable(sqlstate: str | None) -> bool:
    return sqlstate is not None and (sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES)


def _database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.Error):
        sqlstate = exc.sqlstate
        if sqlstate is None:
            # No SQLSTATE means the server never answered: refused, reset, closed mid-query. Only the
            # connection-level classes can lack one.
            return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        return _sqlstate_unavailable(sqlstate)
    if isinstance(exc, django.db.Error):
        cause = exc.__cause__
        if isinstance(cause, psycopg.Error):
            return _database_unavailable(cause)
        # Django's own, unchained: "connection already closed" and the like.
        return isinstance(exc, django.db.InterfaceError | django.db.OperationalError)
    return False


def _kombu_unavailable(exc: BaseException) -> bool:
    # kombu's OperationalError (publishing failed), recognised by name: kombu comes with Celery and is not
    # one of our declared dependencies, so it is not imported here.
    return any(
        cls.__module__ == "kombu.exceptions" and cls.__name__ == "OperationalError"
        for cls in type(exc).__mro__
    )


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database or the broker is unavailable."""
    current: BaseException | None = exc
    for _ in range(_CHAIN_DEPTH):
        if current is None:
            return False
        if (
            _database_unavailable(current)
            or isinstance(current, _BROKER_ERRORS)
            or _kombu_unavailable(current)
        ):
            return True
        current = current.__cause__
    return False


OUTAGE_ERROR_CODE = "SERVICE_UNAVAILABLE"
OUTAGE_MESSAGE = "A service this request needs is unavailable; retry after the number of seconds given."


def retry_after_seconds() -> int:
    """How long clients are told to wait before retrying (``API_RETRY_AFTER_SECONDS``)."""
    return int(settings.API_RETRY_AFTER_SECONDS)


def outage_parts() -> tuple[dict[str, int], dict[str, str]]:
    """The envelope's ``details`` and the response headers of a 503: the same wait in both."""
    seconds = retry_after_seconds()
    return {"retry_after_seconds": seconds}, {"Retry-After": str(seconds)}
