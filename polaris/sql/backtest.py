"""The backtest's reads over the event history (``automation.backtest_scan``).

Every statement selects from the table the caller names (the event model's); values are parameters.
"""

from __future__ import annotations

# The UTC day of ``occurred_at`` as an integer (days since 1970-01-01): grouped on in SQL.
DAY = "((occurred_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01')"
# A payload key as text, and a payload key path as JSON text.
PAYLOAD_KEY = "payload ->> %s"
PAYLOAD_PATH = "(payload #> %s)::text"
# The trigger's event type and window; the agency scope (``automation.ruleset.scope_admits``) in SQL.
WINDOW = "event_type = %s AND occurred_at >= %s AND occurred_at < %s"
AGENCY = " AND payload ->> 'agency_id' = %s"


def scan_sql(table: str, columns: list[str], where: str) -> str:
    # Why not the ORM: JSON path projections streamed through a named server-side cursor as tuples.
    return f"SELECT {', '.join(columns)} FROM {table} WHERE {where}"  # noqa: S608


def grouped_sql(table: str, exprs: list[str], where: str) -> str:
    # Why not the ORM: GROUP BY over computed expressions of a LIMITed subquery (the bound on rows read).
    keys = ["day", *(f"c{i}" for i in range(len(exprs)))]
    inner = ", ".join([f"{DAY} AS day", *(f"{expr} AS c{i}" for i, expr in enumerate(exprs))])
    return (
        f"SELECT {', '.join(keys)}, count(*) FROM (SELECT {inner} FROM {table} WHERE {where} LIMIT %s) s"  # noqa: S608
        f" GROUP BY {', '.join(keys)}"
    )


def sample_sql(table: str, exprs: list[str], where: str, hits: int, limit: int) -> str:
    # Why not the ORM: ``IS NOT DISTINCT FROM`` over computed JSON expressions, one alternative per hit.
    alternatives = [" AND ".join(["TRUE", *(f"{expr} IS NOT DISTINCT FROM %s" for expr in exprs)])] * hits
    return (
        f"SELECT id FROM {table} WHERE {where}"  # noqa: S608
        f" AND (({') OR ('.join(alternatives)})) LIMIT {limit}"
    )


def statement_timeout_sql() -> str:
    # Why not the ORM: a transaction-local setting (``set_config(…, true)``).
    return "SELECT set_config('statement_timeout', %s, true)"
