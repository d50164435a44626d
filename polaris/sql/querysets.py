"""ORM querysets whose compiled SQL is kept per shape: a task read or a list page compiles its statement once.

Compiling a queryset with ``select_related`` (the task with its SLA record and config) takes the ORM more
Python work than everything else a task read does; the statement it produces is the same on every request
but for its parameter values. ``statement_cached(queryset)`` keeps the ORM's own compilation (the SQL,
the selected columns and how they map onto the model and its related objects, the converters) per shape,
and on later runs compiles only the ``WHERE`` clause, for its parameter values, to check the shape.

A shape is everything the SQL depends on except the ``WHERE`` clause's values: the model, the database,
the ``WHERE`` clause's text, the joins, ``select_related``, ordering, limits, deferred fields and
``select_for_update``. A query whose SQL could take parameters from anywhere but its ``WHERE`` clause
(annotations, ``extra``, ``values()``, grouping, ``distinct``, combinators) is left to the ORM, and so is
any shape whose compiled parameters turn out not to be exactly the ``WHERE`` clause's: such shapes are
remembered as uncacheable. Rows become instances exactly as the ORM's ``ModelIterable`` makes them
(``from_db``, related objects, prefetches), because it is the ORM's iterable that runs, handed the compiler
with the kept state. Used on measured hot reads only (``workflow.selectors``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.query import Query

_SHAPES_KEPT = 256  # distinct shapes per process; past it the cache starts over (shapes are few)

# shape -> the compiled statement and the compiler state the iterable reads, or None (uncacheable)
_statements: dict[tuple, tuple[str, dict[str, Any], list] | None] = {}


def _shape(query: Query, using: str) -> tuple | None:
    """What the statement depends on besides the WHERE clause; None for queries this cache leaves alone."""
    if (
        query.annotations
        or query.extra
        or query.extra_tables
        or query.values_select
        or query.select
        or query.group_by is not None
        or query.distinct
        or query.combinator
        or query.extra_order_by
    ):
        return None
    try:
        joins = tuple(
            (alias, join.table_name, getattr(join, "join_type", None), getattr(join, "parent_alias", None))
            for alias, join in query.alias_map.items()
        )
        return (
            query.model,
            using,
            joins,
            repr(query.select_related),
            tuple(query.order_by),
            query.default_ordering,
            query.standard_ordering,
            query.low_mark,
            query.high_mark,
            (frozenset(query.deferred_loading[0]), query.deferred_loading[1]),
            query.select_for_update,
            query.select_for_update_nowait,
            query.select_for_update_skip_locked,
            tuple(query.select_for_update_of),
            query.select_for_no_key_update,
        )
    except TypeError:  # an unhashable part: leave it to the ORM
        return None


def _kept_compiler(query: Query, using: str) -> SQLCompiler | None:
    """A compiler for ``query`` that runs the kept statement with this query's values, or None."""
    shape = _shape(query, using)
    if shape is None:
        return None
    compiler = query.get_compiler(using=using)
    try:
        where_sql, where_params = compiler.compile(query.where)
    except Exception:  # EmptyResultSet, FullResultSet or anything unusual: the ORM's own path decides
        return None
    key = (*shape, where_sql)
    if key not in _statements:
        if len(_statements) >= _SHAPES_KEPT:
            _statements.clear()
        _statements[key] = _compiled(query.clone(), using, tuple(where_params))
        return None  # this run compiles as usual
    kept = _statements[key]
    if kept is None:
        return None
    sql, state, converters = kept
    compiler.__dict__.update(state)
    params = tuple(where_params)
    compiler.as_sql = lambda *args, **kwargs: (sql, params)
    compiler.get_converters = lambda expressions: converters
    return compiler


def _compiled(query: Query, using: str, where_params: tuple) -> tuple[str, dict[str, Any], list] | None:
    compiler = query.get_compiler(using=using)
    try:
        sql, params = compiler.as_sql()
    except (EmptyResultSet, FullResultSet):
        return None
    if tuple(params) != where_params:
        return None  # parameters from outside the WHERE clause: not a shape we can replay
    state = {
        name: getattr(compiler, name)
        for name in ("select", "klass_info", "annotation_col_map", "col_count", "has_extra_select")
    }
    fields = [selected[0] for selected in compiler.select[: compiler.col_count]]
    return sql, state, compiler.get_converters(fields)


class StatementCachedIterable(ModelIterable):
    """The ORM's ``ModelIterable``, handed a compiler that replays the kept statement when there is one."""

    def __iter__(self) -> Any:
        query = self.queryset.query
        compiler = _kept_compiler(query, self.queryset.db)
        if compiler is None:
            yield from super().__iter__()
            return
        # For this one iteration of this query object only (clones made later do not carry it).
        query.get_compiler = lambda *args, **kwargs: compiler  # type: ignore[method-assign]
        try:
            yield from super().__iter__()
        finally:
            del query.get_compiler


def statement_cached(queryset: QuerySet) -> QuerySet:
    """``queryset``, whose instances (and those of its slices and ``get()``) are read with the statement
    kept for its shape. Only for plain model querysets (not ``values()``)."""
    if queryset._iterable_class is not ModelIterable:
        return queryset
    clone = queryset.all()  # a clone
    clone._iterable_class = StatementCachedIterable
    return clone


def rows_counted_up_to(using: str, sql: str, params: tuple, limit: int) -> int:
    """How many rows the compiled query ``sql`` returns, counting no further than ``limit``: what the ORM's
    ``queryset[:limit].count()`` runs, for a queryset already compiled (the sliced count would compile it
    again inside an aggregation; the paginator compiles it once for its estimate key and this count)."""
    with connections[using].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql} LIMIT %s) AS bounded", [*params, int(limit)])  # noqa: S608
        return int(cursor.fetchone()[0])


def pks_counted_up_to(queryset: QuerySet, limit: int) -> tuple[int, list | None]:
    """How many rows ``queryset`` returns, counted no further than ``limit + 1``, and their primary keys
    when they are at most ``limit`` (else ``None``): one statement, which sends the keys only when few."""
    bounded = queryset.order_by().values("pk")[: limit + 1]
    try:
        sql, params = bounded.query.sql_with_params()
    except EmptyResultSet:  # ``none()``, or a filter nothing can match: no query to run
        return 0, []
    with connections[bounded.db].cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), CASE WHEN COUNT(*) <= %s THEN array_agg(pk) END FROM ({sql}) AS bounded(pk)",  # noqa: S608
            [int(limit), *params],
        )
        count, pks = cursor.fetchone()
    return int(count), (pks or []) if count <= limit else None


# A count a selector already ran, kept on the queryset object it returns (not on its clones).
_ROWS_COUNTED = "_rows_counted"


def rows_counted_note(queryset: QuerySet, *, rows: int, exact_up_to: int) -> QuerySet:
    """Note on ``queryset`` itself a count its selector has already run (a bounded one): ``rows`` is exact
    when at most ``exact_up_to``, and above it says only "more than ``exact_up_to``". The paginator
    (``polaris.api.pagination``) then runs no count of its own: exact up to ``exact_up_to``, PostgreSQL's
    estimate beyond. Any clone (a filter, a slice) is a new query and carries no note."""
    setattr(queryset, _ROWS_COUNTED, (rows, exact_up_to))
    return queryset


def rows_counted_noted(queryset: QuerySet) -> tuple[int, int] | None:
    """The ``(rows, exact_up_to)`` noted on ``queryset`` by ``rows_counted_note``, or ``None``."""
    return getattr(queryset, _ROWS_COUNTED, None)
