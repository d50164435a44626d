"""Probes. ``/healthz``: the process answers (no dependency is touched, so a database outage does not get
every web process restarted). ``/readyz``: this process can serve traffic — the database answers, Redis
answers, and no migration is left to apply. 200 when all pass, else 503; the body names each check.

A failed check says ``"error": "unavailable"`` and nothing more: the probe is unauthenticated, and an
exception's text names hosts, users and databases. The exception goes to the log (``polaris.health``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

logger = logging.getLogger("polaris.health")

PROBE_TIMEOUT_SECONDS = 2.0
UNAVAILABLE = "unavailable"

# Once every migration is applied it stays so for this process's life (a deploy starts new processes),
# so the migration graph is loaded once per process, not at every probe.
_migrations_ok = False


def check_database() -> str | None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return None


def check_redis() -> str | None:
    client = redis.Redis.from_url(
        str(settings.REDIS_URL),
        socket_timeout=PROBE_TIMEOUT_SECONDS,
        socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()
    return None


def check_migrations() -> str | None:
    global _migrations_ok
    if _migrations_ok:
        return None
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        return f"{len(plan)} migration(s) not applied, e.g. {plan[0][0].app_label}.{plan[0][0].name}"
    _migrations_ok = True
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "redis": check_redis,
    "migrations": check_migrations,
}


def _run(name: str, check: Callable[[], str | None]) -> dict:
    started = time.perf_counter()
    try:
        problem = check()
    except Exception:  # any failure of a dependency means "not ready", never a 500
        logger.warning("readiness check %s failed", name, exc_info=True)
        problem = UNAVAILABLE
    result: dict = {"ok": problem is None, "duration_ms": round((time.perf_counter() - started) * 1000, 2)}
    if problem:
        result["error"] = problem
    return result


SAFE_METHODS = ("GET", "HEAD")


def probe(view: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """GET and HEAD only (anything else, TRACE included, is a JSON 405 with ``Allow``), never cached, and
    exempt from CSRF: a probe holds no session, so a stray POST is a wrong method, not a forgery."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method not in SAFE_METHODS:
            response = JsonResponse(
                {"status": "error", "error_code": "METHOD_NOT_ALLOWED", "message": "Use GET or HEAD."},
                status=405,
            )
            response["Allow"] = ", ".join(SAFE_METHODS)
            return response
        return view(request)

    return csrf_exempt(never_cache(wrapper))


@probe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@probe
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {name: _run(name, check) for name, check in CHECKS.items()}
    ready = all(result["ok"] for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
