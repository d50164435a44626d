"""Outages are 503 SERVICE_UNAVAILABLE with Retry-After; bugs stay 500. Errors here are real ones, raised by a
real PostgreSQL and a real (absent) Redis, not constructed by hand."""

import contextlib
import socket
import sys

import kombu
import psycopg
import pytest
import redis
from django.db import (
    DatabaseError,
    IntegrityError,
    ProgrammingError,
    close_old_connections,
    connection,
    transaction,
)
from django.test import RequestFactory

from polaris.api.handlers import server_error
from polaris.api.outages import is_outage
from tests.support.api import assert_envelope


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def raised(call) -> BaseException:
    try:
        call()
    except BaseException as exc:
        return exc
    raise AssertionError("expected an exception")


def test_a_refused_database_connection_is_an_outage():
    exc = raised(lambda: psycopg.connect(host="127.0.0.1", port=closed_port(), connect_timeout=2))
    assert isinstance(exc, psycopg.OperationalError)
    assert is_outage(exc)


def test_an_unreachable_broker_is_an_outage():
    assert is_outage(raised(lambda: redis.Redis(port=closed_port(), socket_connect_timeout=1).ping()))
    with kombu.Connection(f"redis://127.0.0.1:{closed_port()}/0", connect_timeout=1) as conn:
        exc = raised(lambda: conn.ensure_connection(max_retries=1))
    assert is_outage(exc)


@pytest.mark.django_db
def test_query_errors_are_not_outages():
    def run(sql: str) -> BaseException:
        def call():
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)

        return raised(call)

    assert not is_outage(run("SELECT * FROM no_such_table"))  # ProgrammingError: a bug
    assert isinstance(run("SELECT 1/0"), DatabaseError)
    assert not is_outage(run("SELECT 1/0"))
    assert not is_outage(run("SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)"))  # 57014: not 57P0x
    duplicate = run("CREATE TEMP TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (1)")
    assert isinstance(duplicate, IntegrityError)
    assert not is_outage(duplicate)
    assert isinstance(run("SELECT * FROM no_such_table"), ProgrammingError)


@pytest.mark.django_db
def test_a_read_only_database_is_an_outage():
    # What a failover to a standby looks like to the app: writes refused with SQLSTATE 25006.
    def write():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY; CREATE TEMP TABLE ro (id int)")

    assert is_outage(raised(write))


@pytest.mark.django_db(transaction=True)
def test_a_terminated_backend_is_an_outage_and_the_api_says_503(agent_api):
    agent_api.get("/api/workflow/tasks")  # the request's connection exists (CONN_MAX_AGE keeps it)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    killer = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    with killer:
        killer.execute("SELECT pg_terminate_backend(%s)", [pid])
    response = agent_api.get("/api/workflow/tasks")
    body = assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert response["Retry-After"] == "5"
    assert body["details"] == {"retry_after_seconds": 5}
    # Django drops a broken connection when a request finishes (the test client turns that off; do it as
    # a real server does); the next request reconnects.
    close_old_connections()
    assert agent_api.get("/api/workflow/tasks").status_code == 200


def test_outside_drf_an_outage_is_503_on_every_path_and_a_bug_stays_500():
    factory = RequestFactory()
    refused = raised(lambda: psycopg.connect(host="127.0.0.1", port=closed_port(), connect_timeout=2))
    with contextlib.suppress(Exception):
        try:
            raise refused
        except psycopg.Error:
            api = server_error(factory.get("/api/workflow/tasks"))
            page = server_error(factory.get("/admin/"))
    assert (api.status_code, api["Retry-After"]) == (503, "5")
    assert api.content.startswith(b'{"success": false, "error_code": "SERVICE_UNAVAILABLE"')
    assert (page.status_code, page["Retry-After"]) == (503, "5")
    try:
        raise ValueError("a bug")
    except ValueError:
        assert sys.exc_info()[0] is ValueError
        assert server_error(factory.get("/api/workflow/tasks")).status_code == 500
