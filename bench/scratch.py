"""Scratch databases for the benchmarks, on whichever server ``DATABASE_URL`` names.

URLs go to libpq as they are, so devstack's embedded server (a socket given as ``?host=/path``) works
the same as a TCP one.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def database_url(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def admin_connection(url: str):
    import psycopg

    return psycopg.connect(database_url(url, "postgres"), autocommit=True)


def drop_database(url: str, database: str) -> None:
    with admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def recreate_database(url: str, database: str) -> None:
    drop_database(url, database)
    with admin_connection(url) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')


def django_setup_and_migrate() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
