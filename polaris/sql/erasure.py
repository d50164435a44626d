"""Erasure's and retention's statements: rewrite a batch of rows' columns in place; walk a table by index.

Table and column names come from the caller's model; values are parameters.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models


def _column(model: type[models.Model], name: str) -> str:
    """The column of ``model``'s concrete field ``name``."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    assert field.column is not None
    return field.column


@functools.cache
def _rewrite_sql(model: type[models.Model], columns: tuple[str, ...]) -> str:
    # Why not the ORM: bulk_update writes one CASE branch per row and column (quadratic in the batch);
    # an UPDATE … FROM jsonb_to_recordset of the batch is one linear statement.
    table = model._meta.db_table
    pk = model._meta.pk
    fields = [model._meta.get_field(name) for name in columns]
    types = [field.db_type(connection) for field in fields if isinstance(field, models.Field)]
    names = [_column(model, name) for name in columns]
    record = ", ".join(
        [f"{pk.column} {pk.db_type(connection)}"] + [f"{n} {t}" for n, t in zip(names, types, strict=True)]
    )
    assignments = ", ".join(f"{n} = b.{n}" for n in names)
    return (
        f"UPDATE {table} AS t SET {assignments} "  # noqa: S608
        f"FROM jsonb_to_recordset(%s::jsonb) AS b({record}) WHERE t.{pk.column} = b.{pk.column}"
    )


def rows_rewrite(model: type[models.Model], columns: tuple[str, ...], rows: list[dict[str, Any]]) -> int:
    """Set ``columns`` of each row in ``rows`` (``{pk: …, column: …}``, JSON-ready) in one statement."""
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_rewrite_sql(model, columns), [json.dumps(rows, cls=DjangoJSONEncoder)])
        return cursor.rowcount


@functools.cache
def _index_walk_sql(model: type[models.Model], key: tuple[str, ...], where: tuple[str, ...]) -> str:
    # Why not the ORM: a row-value comparison ``(a, b) > (%s, %s)`` is one index range scan; the ORM
    # spells it as nested ORs, which the planner cannot turn into a range.
    table = model._meta.db_table
    columns = ", ".join(_column(model, name) for name in key)
    marks = ", ".join(["%s"] * len(key))
    conditions = "".join(f" AND {_column(model, name)} = %s" for name in where)
    pk = model._meta.pk.column
    return (
        f"SELECT {pk}, {columns} FROM {table} WHERE ({columns}) > ({marks}){conditions} "  # noqa: S608
        f"ORDER BY {columns} LIMIT %s"
    )


def index_walk(
    model: type[models.Model],
    key: tuple[str, ...],
    after: tuple,
    limit: int,
    *,
    where: dict[str, Any] | None = None,
) -> list[tuple]:
    """The next ``limit`` rows ``(pk, *key)`` after ``after`` in the order of ``key`` (an index's columns),
    among rows whose ``where`` columns equal the values given (a partial index's predicate)."""
    where = where or {}
    with connection.cursor() as cursor:
        cursor.execute(_index_walk_sql(model, key, tuple(where)), [*after, *where.values(), limit])
        return cursor.fetchall()


@functools.cache
def _rows_delete_sql(model: type[models.Model]) -> str:
    # Why not the ORM: QuerySet.delete() loads every row (payload included) into Python to cascade, and
    # deletes in chunks of 100; the caller has already removed or detached the dependents.
    return f"DELETE FROM {model._meta.db_table} WHERE {model._meta.pk.column} = ANY(%s)"  # noqa: S608


def rows_delete(model: type[models.Model], ids: list[Any]) -> int:
    """Delete the rows of ``model`` with these primary keys in one statement; returns how many went."""
    if not ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_rows_delete_sql(model), [list(ids)])
        return cursor.rowcount
