"""A probe for tests, benchmarks and chaos drills: a handler whose effect is a row in a plain table.

The table has no unique constraint, so counting rows per event shows an effect repeated (the ledger alone
could not: it is unique), and insertion order shows an effect out of sequence. Nothing loads it unless
asked: a process registers it with ``register()`` (worker subprocesses through a module named in
``OUTBOX_EXTRA_HANDLER_MODULES`` that calls it), after ``effect_table_create()``.

Instrumentation, not part of the outbox: it lives with the tests, and the benchmarks import it from here.
"""

from __future__ import annotations

import os
import time

from django.db import connection

from outbox.registry import register_handler, unregister_handler

# The names it had when it lived in outbox/: ledgers and benchmark scripts written since still match.
EFFECT_TABLE = "outbox_effect_probe"
HANDLER_NAME = "outbox.effect_probe"
PROBE_EVENT_TYPE = "DispatchProbed"


def _delay(events: int) -> None:
    delay = float(os.environ.get("POLARIS_TEST_HANDLER_DELAY_SECONDS") or 0)
    if delay:
        time.sleep(delay * events)


def record_effect(event) -> None:
    _delay(1)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EFFECT_TABLE} (event_id, aggregate_id, sequence, pid) VALUES (%s, %s, %s, %s)",  # noqa: S608
            [event.id, event.aggregate_id, event.sequence, os.getpid()],
        )


def record_effects(events: list) -> None:
    """The batch form: the same rows as ``record_effect`` on each event in turn, in one statement."""
    _delay(len(events))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EFFECT_TABLE} (event_id, aggregate_id, sequence, pid) "  # noqa: S608
            "SELECT e.id, e.aggregate_id, e.sequence, %s FROM unnest(%b::uuid[], %b::uuid[], %b::integer[]) "
            "WITH ORDINALITY AS e(id, aggregate_id, sequence, n) ORDER BY e.n",
            [
                os.getpid(),
                [event.id for event in events],
                [event.aggregate_id for event in events],
                [event.sequence for event in events],
            ],
        )


def effect_table_create() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {EFFECT_TABLE} (id bigserial PRIMARY KEY, event_id uuid NOT NULL,"
            " aggregate_id uuid NOT NULL, sequence integer NOT NULL, pid integer NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        cursor.execute(f"TRUNCATE {EFFECT_TABLE}")


def effect_table_drop() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {EFFECT_TABLE}")


def effect_counts() -> tuple[int, int, int]:
    """(effect rows, distinct events with an effect, events with more than one effect)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), count(DISTINCT event_id), "  # noqa: S608
            f"(SELECT count(*) FROM (SELECT event_id FROM {EFFECT_TABLE} GROUP BY event_id "
            f"HAVING count(*) > 1) AS dup) FROM {EFFECT_TABLE}"
        )
        return cursor.fetchone()


def order_violations() -> int:
    """Effects of one aggregate that happened out of sequence order (by insertion order)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT sequence, lag(sequence) OVER "  # noqa: S608
            f"(PARTITION BY aggregate_id ORDER BY id) AS previous FROM {EFFECT_TABLE}) AS ordered "
            "WHERE previous IS NOT NULL AND previous >= sequence"
        )
        return cursor.fetchone()[0]


def register(*, batch: bool = True) -> None:
    """Every event type: integration tests follow real transitions' events too. ``batch=False``
    registers the per-event form alone (the benchmarks measure both)."""
    register_handler(HANDLER_NAME, record_effect, many=record_effects if batch else None)


def unregister() -> None:
    unregister_handler(HANDLER_NAME)


def handled_event_ids() -> set:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT event_id FROM {EFFECT_TABLE}")  # noqa: S608
        return {row[0] for row in cursor.fetchall()}
