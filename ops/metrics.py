"""``/metrics``: the process counters (ours and django-prometheus's) plus gauges read from the database.

Multiprocess mode. When ``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn with several workers, or the dev
stack's shared directory), every process writes its counters and histograms to files there and the
scrape aggregates them with ``MultiProcessCollector``. The directory must be emptied before the
processes start (gunicorn.conf.py's ``on_starting`` does it; ``scripts/devstack.py`` does it for
``make run``; compose gives each container a fresh tmpfs) and dead workers are marked with
``mark_process_dead`` (gunicorn ``child_exit``, Celery ``worker_process_shutdown``).

Gauge modes: the state gauges below are not process values at all. They are computed from PostgreSQL
when scraped (``WorkflowStateCollector``), so any web process gives the same answer and no multiprocess
gauge mode (``livesum``/``max``…) has to reconcile per-process copies.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric, UnknownMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from automation import metrics as automation_metrics  # noqa: F401
from outbox import metrics as outbox_metrics  # noqa: F401
from sla import metrics as sla_metrics  # noqa: F401
from workflow import metrics as workflow_metrics  # noqa: F401

from . import stats
from .health import probe

logger = logging.getLogger(__name__)

# Each app defines its own process metrics (imported above), so every process that serves a scrape lists
# them all, whatever code it has run so far: a web process never imports the dispatcher, yet shows
# outbox_dispatch_lag_seconds.

# Celery task outcomes, counted in the process that ran the task (prefork children in multiprocess mode).
CELERY_TASKS = Counter(
    "celery_tasks_total", "Celery tasks finished, by task name and final state.", ["task_name", "state"]
)


class WorkflowStateCollector(Collector):
    """Scrape-time gauges from the database: workload per state, outbox backlog, SLA clocks."""

    def describe(self) -> Iterator[Metric]:
        """Names only, so registering the collector never queries the database (import or migrate time)."""
        yield UnknownMetricFamily("active_tasks_total", "Current tasks per state.")
        for name in (
            "workflow_action_plans",
            "outbox_events_pending",
            "outbox_events_processing",
            "outbox_events_dead",
            "outbox_oldest_pending_age_seconds",
            "sla_records_running",
            "sla_records_at_risk",
            "polaris_state_collector_up",
            "polaris_state_collector_duration_seconds",
        ):
            yield GaugeMetricFamily(name, name)

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        try:
            snapshot = stats.metrics_snapshot()
        except DatabaseError:
            logger.warning("metrics collector could not read the database", exc_info=True)
            up = GaugeMetricFamily("polaris_state_collector_up", "1 when the database gauges were read.")
            up.add_metric([], 0)
            yield up
            return

        # The specification names this ``active_tasks_total``. It is a current value, and Prometheus'
        # naming rules (promtool) reserve ``_total`` for counters, so it is exported untyped: the spec
        # name is kept, and PromQL treats an untyped series exactly like a gauge.
        tasks = UnknownMetricFamily("active_tasks_total", "Current tasks per state.", labels=["state"])
        for state, count in snapshot["tasks"].items():
            tasks.add_metric([state], count)
        yield tasks

        plans = GaugeMetricFamily(
            "workflow_action_plans", "Current action plans per state.", labels=["state"]
        )
        for state, count in snapshot["action_plans"].items():
            plans.add_metric([state], count)
        yield plans

        outbox = snapshot["outbox"]
        yield GaugeMetricFamily(
            "outbox_events_pending",
            "Outbox events not yet dispatched (waiting, retrying or claimed).",
            value=outbox.pending,
        )
        yield GaugeMetricFamily(
            "outbox_events_processing",
            "Outbox events claimed by a dispatcher right now.",
            value=outbox.processing,
        )
        yield GaugeMetricFamily(
            "outbox_events_dead", "Dead-lettered outbox events awaiting replay.", value=outbox.dead
        )
        yield GaugeMetricFamily(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest undispatched outbox event (0 when none): the dispatch lag right now.",
            value=outbox.oldest_pending_age_seconds,
        )

        sla = snapshot["sla"]
        yield GaugeMetricFamily("sla_records_running", "SLA clocks running now.", value=sla["running"])
        yield GaugeMetricFamily(
            "sla_records_at_risk",
            "Open SLA records past a warning threshold or their due time.",
            value=sla["at_risk"],
        )

        up = GaugeMetricFamily("polaris_state_collector_up", "1 when the database gauges were read.")
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "polaris_state_collector_duration_seconds",
            "Time taken to read the database gauges at this scrape.",
            value=time.perf_counter() - started,
        )


_collector = WorkflowStateCollector()
_registries: dict[str, CollectorRegistry] = {}


def collector_register() -> None:
    """Register the database collector once per process (``OpsConfig.ready()`` may run more than once)."""
    if multiprocess_dir():
        return  # the multiprocess registry below carries it
    if "default" not in _registries:
        REGISTRY.register(_collector)
        _registries["default"] = REGISTRY


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_registry() -> CollectorRegistry:
    """The registry ``/metrics`` serves, built once per process (and per multiprocess directory)."""
    path = multiprocess_dir()
    if not path:
        collector_register()
        return REGISTRY
    registry = _registries.get(path)
    if registry is None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        registry.register(_collector)
        _registries[path] = registry
    return registry


def bearer_token_matches(request: HttpRequest, expected: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


@probe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format 0.0.4 (every name here is a classic one, so no escaping is negotiated).

    With ``METRICS_BEARER_TOKEN`` set, only a scrape carrying ``Authorization: Bearer <token>`` is
    answered (401 otherwise). Without a token the endpoint is closed (403) unless ``METRICS_PUBLIC`` opens
    it on purpose; that defaults to ``DEBUG``, so a development stack is open and production is not
    (docs/operations.md).
    """
    expected = getattr(settings, "METRICS_BEARER_TOKEN", None)
    if expected and not bearer_token_matches(request, expected):
        response = HttpResponse("metrics require a bearer token\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not expected and not getattr(settings, "METRICS_PUBLIC", False):
        return HttpResponse(
            "metrics are closed: set METRICS_BEARER_TOKEN (or METRICS_PUBLIC=true)\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_PLAIN_0_0_4)
