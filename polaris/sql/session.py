"""Session and transaction settings: limits and durability the ORM has no words for.

Each function applies to the current transaction only (``set_config(…, true)`` / ``SET LOCAL``), on the
default connection unless a cursor is given.
"""

from __future__ import annotations

from django.db import connection


def transaction_settings(**values: str) -> None:
    """Set server settings (``lock_timeout``, ``statement_timeout``, …) for this transaction only."""
    # Why not the ORM: server settings have no ORM expression; ``set_config(…, true)`` takes parameters.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(values)),
            [item for pair in values.items() for item in pair],
        )


def transaction_read_only() -> None:
    """Make this transaction read-only (the first statement of the transaction)."""
    # Why not the ORM: transaction modes have no ORM expression.
    with connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")


def commit_without_flush_wait() -> None:
    """Let this transaction commit without waiting for its WAL flush (``synchronous_commit = off``)."""
    # Why not the ORM: ``SET LOCAL`` has no ORM expression.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


def listen(listener: object, channel: str) -> None:
    """LISTEN on ``channel`` with a dedicated psycopg connection (a constant name, never user input)."""
    # Why not the ORM: LISTEN/NOTIFY has no ORM expression.
    listener.execute(f"LISTEN {channel}")  # type: ignore[attr-defined]


async def listen_async(listener: object, channel: str) -> None:
    """LISTEN on ``channel`` with a dedicated async psycopg connection (a constant name, never user input)."""
    # Why not the ORM: LISTEN/NOTIFY has no ORM expression (and the ORM has no async connections).
    await listener.execute(f"LISTEN {channel}")  # type: ignore[attr-defined]
