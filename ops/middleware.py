"""One structured log line per request; the request is bound so lines logged meanwhile name its actor."""

from __future__ import annotations

import time

import structlog
from django.http import HttpRequest, HttpResponse

from polaris.logging import current_request

logger = structlog.get_logger("polaris.request")

# Probes are scraped every few seconds: logging each would drown the rest.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestLogMiddleware:
    """Place after ``AuthenticationMiddleware`` and ``CorrelationIdMiddleware``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = current_request.set(request)
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(method=request.method, path=request.path):
                response = self.get_response(request)
                if request.path not in QUIET_PATHS:
                    level = "warning" if response.status_code >= 500 else "info"
                    getattr(logger, level)(
                        "request.finished",
                        status=response.status_code,
                        client=request.META.get("REMOTE_ADDR"),  # the client, not the proxy (polaris.proxies)
                        duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    )
                return response
        finally:
            current_request.reset(token)
