"""Structured logs for the web, worker and beat processes (structlog on top of the standard library).

Every line carries ``correlation_id`` (from ``polaris.correlation``), the ``service`` that wrote it,
and whatever is bound with ``structlog.contextvars`` (``actor`` for requests, ``task_id``/``task_name``
in Celery tasks, ``event_id`` where a handler binds it). Standard-library loggers (Django, Celery) go
through the same formatter, and their ``extra={...}`` fields become keys of the line.

``LOG_FORMAT=json`` (production default) prints one JSON object per line; ``console`` prints readable,
aligned lines for development. settings.py builds ``LOGGING`` with ``logging_config()``; importing this
module also tells Celery to use that configuration instead of its own (the ``setup_logging`` signal).
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from contextvars import ContextVar
from typing import Any

import structlog
from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS
from celery.signals import setup_logging
from django.utils.functional import SimpleLazyObject, empty

from polaris.correlation import get_correlation_id


def _service_name() -> str:
    """Which process this is, for the ``service`` key: set POLARIS_SERVICE to override."""
    explicit = os.environ.get("POLARIS_SERVICE")
    if explicit:
        return explicit
    argv = " ".join(sys.argv[:4])
    if "celery" in argv:
        return "beat" if " beat" in argv else "worker"
    return "web"


SERVICE = _service_name()

# The request in hand (set by ops.middleware.RequestLogMiddleware), for the actor processor.
current_request: ContextVar[Any] = ContextVar("polaris_current_request", default=None)


def add_correlation_id(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    if not event_dict.get("correlation_id"):
        correlation_id = get_correlation_id()
        if correlation_id:
            event_dict["correlation_id"] = correlation_id
    return event_dict


def add_service(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    event_dict.setdefault("service", SERVICE)
    return event_dict


def _known_user(request: Any) -> Any:
    """The request's user if authentication has already happened; never triggers a query itself.

    Django's middleware sets a lazy user (resolved on first use); DRF replaces it with the user its
    authenticators (JWT, session) found.
    """
    user = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    if user is None:
        user = getattr(request, "_cached_user", None)
    return user if user is not None and user.is_authenticated else None


def add_actor(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """``actor`` (user id) and ``actor_role`` of the request in hand, once authentication has run."""
    request = current_request.get()
    if request is not None and "actor" not in event_dict:
        user = _known_user(request)
        if user is not None:
            event_dict["actor"] = user.pk
            event_dict["actor_role"] = getattr(user, "role", None)
    return event_dict


# Shared by structlog loggers and by standard-library records (``foreign_pre_chain``).
SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    add_correlation_id,
    add_actor,
    add_service,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _renderers(fmt: str) -> list[Any]:
    if fmt == "console":
        return [
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            )
        ]
    return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(sort_keys=False)]


# Celery's routine INFO lines, by logger: a task received, a task succeeded (with its whole return value),
# beat sending a due task. Beat sends three tasks every 5 s, so at INFO they were most of `make run`'s
# console and buried the request and failure lines.
CELERY_ROUTINE = {
    "celery.worker.strategy": LOG_RECEIVED,
    "celery.app.trace": LOG_SUCCESS,
    "celery.beat": "Scheduler: Sending due task %s (%s)",
}


class CeleryRoutineAtDebug(logging.Filter):
    """Logs Celery's routine lines (``CELERY_ROUTINE``) at DEBUG instead of INFO, so ``LOG_LEVEL=DEBUG``
    still shows every task run. Failures (ERROR), rejections (WARNING) and retries keep Celery's levels."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.msg == CELERY_ROUTINE.get(record.name):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def logging_config(*, level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """The ``LOGGING`` dict for settings.py; also configures structlog itself."""
    if fmt not in {"json", "console"}:
        raise ValueError(f"LOG_FORMAT must be 'json' or 'console', not {fmt!r}.")
    structlog.configure(
        processors=[
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(fmt)],
                "foreign_pre_chain": [
                    *SHARED_PROCESSORS,
                    structlog.stdlib.ExtraAdder(),
                    structlog.stdlib.PositionalArgumentsFormatter(),
                ],
            }
        },
        "filters": {"celery_routine": {"()": CeleryRoutineAtDebug}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            **{name: {"filters": ["celery_routine"]} for name in CELERY_ROUTINE},
            "django.db.backends": {"level": "WARNING"},
            # gunicorn installs its own plain-text handlers; replace them with ours. The access line
            # is ours too (polaris.request: status, duration, actor, correlation id).
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "django.server": {"level": "WARNING"},
            # django-axes announces itself in every process and logs each failed admin login at INFO;
            # lockouts, the part an operator needs, are WARNING.
            "axes": {"level": "WARNING"},
        },
    }


@setup_logging.connect(weak=False)
def _celery_uses_django_logging(**kwargs: Any) -> None:
    """Worker and beat log through the same structured configuration instead of Celery's own."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
