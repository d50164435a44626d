"""The three statements of a routing decision, written once from the models' metadata and prepared on the
server (``polaris.sql.prepared``): the agency's enabled rules with their candidates, the agency's staff with
their profiles and counters, the worker of a client's latest other open task.

Why not the ORM: each of them executes in well under a millisecond, and the ORM spent more than that
compiling them again on every decision and converting the 500 rows of the staff field by field (the
decision's budget is 5 ms at the 99th percentile: docs/routing.md). The SQL says what the ORM queries said
(the tests hold the answers and the statement count); identifiers come from model metadata, quoted, and
every value is a parameter.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection
from django.db.models import Model

from polaris.accounts.models import User
from polaris.sql.precompiled import rows_as_instances
from polaris.sql.prepared import hot_statement
from workflow.models import Task

from .decide import OPEN_STATES, Worker
from .models import RoutingRule, WorkerLoad, WorkerProfile


def _name(model: type[Model], field: str | None = None) -> str:
    """The quoted table of ``model``, or the quoted column of its ``field``."""
    name = model._meta.db_table if field is None else model._meta.get_field(field).column  # type: ignore[union-attr]
    assert name
    return connection.ops.quote_name(name)


def _placeholders(values: tuple) -> str:
    return ", ".join(["%s"] * len(values))


@functools.cache
def _rules_sql() -> str:
    rule, column = functools.partial(_name, RoutingRule), RoutingRule._meta.concrete_fields
    through = RoutingRule.candidates.through
    m2m = functools.partial(_name, through)
    return hot_statement(
        f"SELECT {', '.join('r.' + rule(field.name) for field in column)},"  # noqa: S608 (names from metadata)
        f" ARRAY(SELECT m.{m2m('user')} FROM {m2m()} m WHERE m.{m2m('routingrule')} = r.{rule('id')})"
        f" FROM {rule()} r WHERE r.{rule('agency')} = %s AND r.{rule('enabled')}"
        f" ORDER BY r.{rule('order')}, r.{rule('created_at')}, r.{rule('id')}"
    )


def enabled_rules(agency_id: Any) -> list[RoutingRule]:
    """The agency's enabled rules in the order they are tried, each with ``candidate_ids`` (its candidates'
    user ids) read in the same statement."""
    with connection.cursor() as cursor:
        cursor.execute(_rules_sql(), [agency_id])
        rows = cursor.fetchall()
    rules = rows_as_instances(RoutingRule, [row[:-1] for row in rows])
    for rule, row in zip(rules, rows, strict=True):
        rule.candidate_ids = row[-1]  # type: ignore[attr-defined]
    return rules


@functools.cache
def _workers_sql() -> str:
    u, p, w = (functools.partial(_name, model) for model in (User, WorkerProfile, WorkerLoad))
    return hot_statement(
        f"SELECT u.{u('id')}, u.{u('username')}, u.{u('role')} = %s,"  # noqa: S608 (names from metadata)
        f" p.{p('service_areas')}, p.{p('task_types')}, p.{p('capacity')}, COALESCE(p.{p('away')}, false),"
        f" p.{p('delegate')}, COALESCE(w.{w('open_tasks')}, 0), COALESCE(w.{w('weighted_load')}, 0)"
        f" FROM {u()} u LEFT JOIN {p()} p ON p.{p('user')} = u.{u('id')}"
        f" LEFT JOIN {w()} w ON w.{w('user')} = u.{u('id')}"
        f" WHERE u.{u('agency')} = %s AND u.{u('role')} IN ({_staff_roles()}) AND u.{u('is_active')}"
    )


def _staff_roles() -> str:
    """The staff roles as SQL literals (constants of the code, not input): a prepared statement's generic
    plan can then use the partial index on staff rows (``user_agency_staff_idx``), which a parameter's
    value could not prove."""
    roles = [role.value for role in User.STAFF_ROLES]
    assert all(role.isidentifier() for role in roles)
    return ", ".join(f"'{role}'" for role in roles)


def staff_workers(agency_id: Any) -> dict[int, Worker]:
    """The agency's active staff (``selectors.staff_of``) with their profiles and counters, by id: each row
    is a ``Worker`` as it comes (no profile: no skills, not away; no counter row: no load)."""
    with connection.cursor() as cursor:
        # psycopg makes each row a Worker directly (no tuple per row to copy: fewer objects for the
        # collector to count, on a path that makes hundreds per call).
        cursor.cursor.row_factory = _worker_rows
        cursor.execute(_workers_sql(), [User.Role.AGENCY.value, agency_id])
        return {worker.id: worker for worker in cursor.fetchall()}


def _worker_rows(cursor: Any) -> Any:
    return Worker._make


@functools.cache
def _client_worker_sql() -> str:
    t = functools.partial(_name, Task)
    return hot_statement(
        f"SELECT t.{t('assignee')} FROM {t()} t"  # noqa: S608 (names from metadata)
        f" WHERE t.{t('client')} = %s AND t.{t('agency')} = %s"
        f" AND t.{t('state')} IN ({_placeholders(OPEN_STATES)})"
        f" AND t.{t('assignee')} IS NOT NULL AND t.{t('id')} <> %s"
        f" ORDER BY t.{t('created_at')} DESC LIMIT 1"
    )


def client_latest_worker(task: Task) -> int | None:
    """The assignee of the client's most recent other open task in the task's agency."""
    with connection.cursor() as cursor:
        cursor.execute(_client_worker_sql(), [task.client_id, task.agency_id, *OPEN_STATES, task.pk])
        row = cursor.fetchone()
    return row[0] if row else None
