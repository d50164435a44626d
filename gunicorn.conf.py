"""gunicorn settings for the web process (``gunicorn polaris.wsgi`` picks this file up from the working
directory; the Dockerfile passes it explicitly). Every value can be overridden from the environment.

Prometheus multiprocess mode: with several workers each one writes its metrics to files in
``PROMETHEUS_MULTIPROC_DIR``; the master empties that directory when it starts (stale files from a
previous run would otherwise be summed in) and marks each exited worker dead.
"""

import gc
import os
from pathlib import Path

from polaris.logging import logging_config

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound; jitter avoids restarting all at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
# The proxies whose X-Forwarded-* headers count: the same TRUSTED_PROXIES list Django uses (polaris.proxies).
forwarded_allow_ips = (
    os.environ.get("FORWARDED_ALLOW_IPS") or os.environ.get("TRUSTED_PROXIES") or "127.0.0.1,::1"
)
# Logs: the same structured configuration as Django (JSON lines; LOG_FORMAT=console for humans).
logconfig_dict = logging_config(
    level=os.environ.get("LOG_LEVEL") or "INFO", fmt=os.environ.get("LOG_FORMAT") or "json"
)
accesslog = None  # polaris.request logs each request with status, duration, actor and correlation id


def on_starting(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)


def post_worker_init(worker):
    # The app is loaded: its ~120,000 long-lived tracked objects (Django, the URLconf, models, DRF) need
    # never be scanned again. Freezing them keeps the collector's full passes short, and with them the
    # latency tail of whichever request triggers one.
    gc.freeze()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
