"""Celery wiring owned by ops: correlation ids across the broker, log context per task, worker metrics.

- ``before_task_publish`` stamps the publisher's correlation id into the message headers;
  ``task_prerun`` binds it (or the task id when there is none) for the task's duration, with
  ``task_id`` and ``task_name`` for the logs; ``task_postrun`` unbinds them.
- ``worker_init`` (the worker's main process) serves the worker's metrics on ``CELERY_METRICS_PORT``
  when it is set; with ``PROMETHEUS_MULTIPROC_DIR`` the prefork children's counters are aggregated
  there (see docs/operations.md, "Metrics").
- ``worker_process_shutdown`` marks a prefork child dead so its live gauges leave the aggregate.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import structlog
from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
)
from django.conf import settings

from polaris.correlation import get_correlation_id, reset_correlation_id, set_correlation_id

logger = logging.getLogger(__name__)

# Not "correlation_id": Celery already uses that name (the AMQP property, set to the task id).
HEADER = "polaris_correlation_id"
_LOG_KEYS = ("task_id", "task_name")
_tokens: dict[str, Any] = {}


def _publish_correlation(headers: dict | None = None, **kwargs: Any) -> None:
    correlation_id = get_correlation_id()
    if headers is not None and correlation_id and HEADER not in headers:
        headers[HEADER] = correlation_id


def _bind_task_context(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None or task is None:
        return
    correlation_id = getattr(task.request, HEADER, None) or task_id
    _tokens[task_id] = set_correlation_id(str(correlation_id))
    structlog.contextvars.bind_contextvars(task_id=task_id, task_name=task.name)


def _unbind_task_context(
    task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs: Any
) -> None:
    if task is not None:
        from .metrics import CELERY_TASKS

        CELERY_TASKS.labels(task.name, state or "UNKNOWN").inc()
    token = _tokens.pop(task_id, None) if task_id else None
    if token is not None:
        try:
            reset_correlation_id(token)
        except ValueError:  # set in another context (a thread pool); fall back to clearing it
            set_correlation_id(None)
    structlog.contextvars.unbind_contextvars(*_LOG_KEYS)


def worker_metrics_registry():
    """What the worker's port serves: the prefork children's files in multiprocess mode, else this process."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _serve_worker_metrics(sender: Any = None, **kwargs: Any) -> None:
    port = settings.WORKER_METRICS_PORT
    if not port:
        return
    pool = str(getattr(sender, "pool_cls", "") or "")
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR") and not any(
        name in pool for name in ("solo", "thread")
    ):
        logger.warning(
            "CELERY_METRICS_PORT is set without PROMETHEUS_MULTIPROC_DIR: the port shows this main process "
            "only, not the counters of the pool processes that run the tasks",
            extra={"pool": pool},
        )
    from prometheus_client import start_http_server

    start_http_server(port, addr=str(settings.WORKER_METRICS_ADDR), registry=worker_metrics_registry())
    logger.info("worker metrics served", extra={"port": port})


def _mark_child_dead(pid: int | None = None, **kwargs: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())


def connect() -> None:
    """Connect the receivers once (called from ``OpsConfig.ready()``; ``dispatch_uid`` dedupes)."""
    before_task_publish.connect(_publish_correlation, weak=False, dispatch_uid="ops.publish_correlation")
    task_prerun.connect(_bind_task_context, weak=False, dispatch_uid="ops.bind_task_context")
    task_postrun.connect(_unbind_task_context, weak=False, dispatch_uid="ops.unbind_task_context")
    worker_init.connect(_serve_worker_metrics, weak=False, dispatch_uid="ops.worker_metrics")
    worker_process_shutdown.connect(_mark_child_dead, weak=False, dispatch_uid="ops.mark_child_dead")
