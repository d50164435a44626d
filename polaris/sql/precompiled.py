"""The hot paths' few statements, compiled once from model metadata instead of on every call.

The ORM spends about half a millisecond compiling each query, more than a round trip on this machine, and
a task transition issues four. These helpers build the SQL the ORM would from ``Model._meta`` (so a renamed
column or a new field cannot drift), cache it per shape, and run it through Django's connection cursor (so
transactions, ``on_commit``, server-side binding and query metrics behave as for any ORM query). As the ORM
does, each statement runs on the database the routers pick for the model (``db_for_read``/``db_for_write``),
and the SQL and converters are cached per model, shape and database alias. Values go
through each field's ``get_db_prep_save``/``get_db_prep_value``; rows come back through the fields'
converters (``from_db_value``) and ``Model.from_db``, as from a queryset. Each statement is prepared on
the server once per connection (``polaris.sql.prepared``). Use them only on measured hot paths, for
statements that find their rows by key; everything else stays plain ORM. Identifiers in the SQL come
from model metadata, quoted; values are always parameters.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.base import ModelState
from django.db.models.fields import NOT_PROVIDED

from polaris.sql.prepared import hot_statement

M = TypeVar("M", bound=models.Model)

# (position in the row, converter functions, the column expression they expect)
Converters = list[tuple[int, list[Any], Any]]


def _quote(connection: BaseDatabaseWrapper, name: str | None) -> str:
    assert name, "a concrete field always has a column"
    return connection.ops.quote_name(name)


def _fields(model: type[models.Model], names: tuple[str, ...]) -> tuple[models.Field, ...]:
    """Concrete fields by name or attname (``task`` or ``task_id``)."""
    return tuple(model._meta.get_field(name) for name in names)  # type: ignore[misc]


def _equals(connection: BaseDatabaseWrapper, fields: tuple[models.Field, ...], separator: str) -> str:
    return separator.join(f"{_quote(connection, field.column)} = %s" for field in fields)


@functools.cache
def _insert_sql(model: type[models.Model], alias: str) -> tuple[str, tuple[models.Field, ...]]:
    connection = connections[alias]
    # A column with a database default (``db_default``) is the database's to fill: leave it out.
    fields = tuple(f for f in model._meta.concrete_fields if f.db_default is NOT_PROVIDED)
    columns = ", ".join(_quote(connection, field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = _quote(connection, model._meta.db_table)
    return hot_statement(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"), fields  # noqa: S608


def row_insert(instance: M) -> M:
    """Insert ``instance`` with every concrete column given (defaults already applied by ``__init__``),
    except those with a ``db_default``, which the database fills (their attribute is left as it is).

    Like ``save(force_insert=True)`` without the save signals; the model must not rely on them, nor on a
    database-generated primary key.
    """
    alias = router.db_for_write(type(instance), instance=instance)
    connection = connections[alias]
    sql, fields = _insert_sql(type(instance), alias)
    params = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    instance._state.adding = False
    instance._state.db = alias
    return instance


def rows_insert(instances: list[M]) -> list[M]:
    """``row_insert`` for several instances of one model, in one multi-row INSERT (one round trip).

    Not prepared on the server: its shape changes with the number of rows.
    """
    if not instances:
        return instances
    model = type(instances[0])
    alias = router.db_for_write(model, instance=instances[0])
    connection = connections[alias]
    sql, fields = _insert_sql(model, alias)
    head, row = sql.split(" VALUES ", 1)
    params = [
        field.get_db_prep_save(field.pre_save(instance, True), connection)
        for instance in instances
        for field in fields
    ]
    # A multi-row VALUES list: ``bulk_create`` would say it too, but without ``db_default`` columns left out.
    with connection.cursor() as cursor:
        cursor.execute(f"{head} VALUES {', '.join([row] * len(instances))}", params)
    for instance in instances:
        instance._state.adding = False
        instance._state.db = alias
    return instances


@functools.cache
def _update_sql(
    model: type[models.Model], columns: tuple[str, ...], where: tuple[str, ...], alias: str
) -> tuple[str, tuple[models.Field, ...], tuple[models.Field, ...]]:
    connection = connections[alias]
    set_fields, where_fields = _fields(model, columns), _fields(model, where)
    table = _quote(connection, model._meta.db_table)
    assignments, conditions = (
        _equals(connection, set_fields, ", "),
        _equals(connection, where_fields, " AND "),
    )
    sql = f"UPDATE {table} SET {assignments} WHERE {conditions}"  # noqa: S608
    return hot_statement(sql), set_fields, where_fields


def _update_params(
    connection: BaseDatabaseWrapper,
    set_fields: tuple[models.Field, ...],
    values: dict[str, Any],
    where_fields: tuple[models.Field, ...],
    where: dict[str, Any],
) -> list[Any]:
    """An UPDATE's parameters: the new values as the fields save them, then the filters' values."""
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(set_fields, values.values(), strict=True)
    ]
    params += [
        field.get_db_prep_value(value, connection)
        for field, value in zip(where_fields, where.values(), strict=True)
    ]
    return params


def rows_update(model: type[models.Model], *, where: dict[str, Any], values: dict[str, Any]) -> int:
    """``model.objects.filter(**where).update(**values)`` for equality filters; returns the rows changed."""
    alias = router.db_for_write(model)
    connection = connections[alias]
    sql, set_fields, where_fields = _update_sql(model, tuple(values), tuple(where), alias)
    params = _update_params(connection, set_fields, values, where_fields, where)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@functools.cache
def _select_sql(
    model: type[models.Model], where: tuple[str, ...], lock: bool, alias: str
) -> tuple[str, tuple[models.Field, ...], Converters]:
    connection = connections[alias]
    fields = tuple(model._meta.concrete_fields)
    where_fields = _fields(model, where)
    table = model._meta.db_table
    columns = ", ".join(_quote(connection, field.column) for field in fields)
    conditions = _equals(connection, where_fields, " AND ")
    sql = f"SELECT {columns} FROM {_quote(connection, table)} WHERE {conditions}"  # noqa: S608
    if lock:
        sql += " FOR UPDATE"
    hot_statement(sql)
    return sql, where_fields, _row_converters(model, alias)[1]


def row_get(model: type[M], *, where: dict[str, Any], lock: bool = False) -> M | None:
    """The row matching the equality filters ``where`` (which must include a unique key), or None.

    Filters are SQL equality: a ``None`` value matches nothing (the ORM would write ``IS NULL``).

    ``lock=True`` is ``select_for_update()``: the row stays locked until the transaction ends.
    """
    alias = router.db_for_read(model)
    connection = connections[alias]
    sql, where_fields, converters = _select_sql(model, tuple(where), lock, alias)
    params = [
        field.get_db_prep_value(value, connection)
        for field, value in zip(where_fields, where.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return _converted(model, alias, row, converters)


@functools.cache
def _row_converters(model: type[models.Model], alias: str) -> tuple[tuple[str, ...], Converters]:
    """The attnames of every concrete column, and the conversions the ORM's compiler applies to each
    selected column (the backend's, then the field's)."""
    connection = connections[alias]
    table = model._meta.db_table
    fields = model._meta.concrete_fields
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(table)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            converters.append((position, functions, column))
    return tuple(field.attname for field in fields), converters


def rows_as_instances(model: type[M], rows: list[tuple], *, alias: str = "default") -> list[M]:
    """Instances of ``model`` from rows holding every concrete column in field order (e.g. an
    ``UPDATE … RETURNING`` of the model's columns), converted as a queryset would convert them.

    Built without ``Model.__init__`` (whose per-field bookkeeping costs more than the row's SQL on a
    batch of hundreds): the attributes are set directly and the instance is marked as loaded from
    ``alias``; no ``pre_init``/``post_init`` signals are sent, so use it only for models without receivers
    of them.
    """
    connection = connections[alias]
    attnames, converters = _row_converters(model, alias)
    instances = []
    for row in rows:
        values = list(row)
        for position, functions, column in converters:
            for convert in functions:
                values[position] = convert(values[position], column, connection)
        instance = model.__new__(model)
        instance.__dict__.update(zip(attnames, values, strict=True))
        state = instance._state = ModelState()
        state.adding = False
        state.db = alias
        instances.append(instance)
    return instances


def _converted(model: type[M], alias: str, row: Any, converters: Converters) -> M:
    connection = connections[alias]
    values = list(row)
    for position, functions, column in converters:
        for convert in functions:
            values[position] = convert(values[position], column, connection)
    return model.from_db(alias, None, values)  # type: ignore[arg-type]


@functools.cache
def _update_then_insert_sql(
    model: type[models.Model],
    columns: tuple[str, ...],
    where: tuple[str, ...],
    inserted: type[models.Model],
    locked: type[models.Model] | None,
    locked_where: tuple[str, ...],
    alias: str,
) -> tuple[str, tuple[tuple[models.Field, ...], ...], Converters]:
    connection = connections[alias]
    update, set_fields, where_fields = _update_sql(model, columns, where, alias)
    insert, fields = _insert_sql(inserted, alias)
    # INSERT … SELECT infers no types from the target columns: each value is cast to its column's type.
    casts = ", ".join(f"CAST(%s AS {field.cast_db_type(connection)})" for field in fields)
    head = insert.split(" VALUES ", 1)[0]
    sql = (
        f"WITH updated AS ({update} RETURNING 1), "  # noqa: S608
        f"inserted AS ({head} SELECT {casts} FROM updated RETURNING 1)"
    )
    if locked is None:
        sql = hot_statement(f"{sql} SELECT count(*) FROM inserted")  # noqa: S608
        return sql, (set_fields, where_fields, fields), []
    select, lock_fields, converters = _select_sql(locked, locked_where, False, alias)
    # The uncorrelated EXISTS runs first (an InitPlan): the update's row lock is taken before this one.
    sql += f", locked AS ({select} AND EXISTS (SELECT FROM inserted) FOR UPDATE)"
    sql += " SELECT (SELECT count(*) FROM inserted), locked.* FROM (SELECT 1) AS one LEFT JOIN locked ON true"
    return hot_statement(sql), (set_fields, where_fields, fields, lock_fields), converters


def rows_update_then_insert(
    model: type[models.Model],
    *,
    where: dict[str, Any],
    values: dict[str, Any],
    instance: models.Model,
    lock: tuple[type[M], dict[str, Any]] | None = None,
) -> tuple[int, M | None]:
    """``rows_update(model, where=…, values=…)`` and, only if it changed a row, ``row_insert(instance)``,
    in one statement (a data-modifying CTE: one round trip). ``where`` must match at most one row.

    With ``lock=(other_model, other_where)``, the same statement then also reads and row-locks
    ``row_get(other_model, where=other_where, lock=True)`` (after the update's own row lock).

    Returns (rows inserted, the locked row or None): (1, …) or, when the update matched nothing, (0, None)
    and nothing at all was written or locked. All models must live on the same database.
    """
    alias = router.db_for_write(model)
    assert router.db_for_write(type(instance), instance=instance) == alias, "one database, one statement"
    connection = connections[alias]
    locked_model, locked_where = lock if lock is not None else (None, {})
    sql, field_groups, converters = _update_then_insert_sql(
        model, tuple(values), tuple(where), type(instance), locked_model, tuple(locked_where), alias
    )
    set_fields, where_fields, fields = field_groups[:3]
    params = _update_params(connection, set_fields, values, where_fields, where)
    params += [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    if locked_model is not None:
        params += [
            field.get_db_prep_value(value, connection)
            for field, value in zip(field_groups[3], locked_where.values(), strict=True)
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    inserted = row[0]
    if inserted != 1:
        return 0, None
    instance._state.adding = False
    instance._state.db = alias
    locked_row = row[1:]
    pk_position = locked_model._meta.concrete_fields.index(locked_model._meta.pk) if locked_model else 0
    if locked_model is None or locked_row[pk_position] is None:  # no row (the LEFT JOIN's NULLs)
        return 1, None
    return 1, _converted(locked_model, alias, locked_row, converters)
