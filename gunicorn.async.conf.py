"""gunicorn settings for the async tier: ``gunicorn -c gunicorn.async.conf.py polaris.asgi:application``.

uvicorn workers (``uvicorn.workers.UvicornWorker``) on an event loop: long-polls wait there, not in a sync
worker (docs/operations.md, "The async tier"). Everything else is ``gunicorn.conf.py``'s (logging, worker
recycling, forwarded headers, Prometheus multiprocess clean-up), with its own bind and worker count.
gunicorn's ``timeout`` is a heartbeat for these workers (the event loop answers it while requests wait),
not a per-request limit; ``EVENT_FEED_MAX_WAIT_SECONDS`` stays under it all the same (polaris.settings).
"""

import os
import runpy
from pathlib import Path

_sync = runpy.run_path(str(Path(__file__).resolve().with_name("gunicorn.conf.py")))
globals().update({name: value for name, value in _sync.items() if not name.startswith("__")})

bind = os.environ.get("ASYNC_BIND", f"0.0.0.0:{os.environ.get('ASYNC_PORT', '8001')}")
worker_class = "uvicorn.workers.UvicornWorker"
# One process holds thousands of waits (one LISTEN connection each process); add processes for CPU.
workers = int(os.environ.get("ASYNC_CONCURRENCY", "1"))
# Long-polls are in flight when a worker is recycled or stopped: let the longest finish.
graceful_timeout = max(int(_sync["graceful_timeout"]), 30)
# Not recycled by request count: each commit answers every waiter it concerns, and their re-polls are
# requests too (1,000 consumers make thousands a minute), while a recycle drops every wait at once (each
# client then re-polls through the full path). ASYNC_MAX_REQUESTS recycles all the same.
max_requests = int(os.environ.get("ASYNC_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10


def on_starting(server):
    # The sync tier's master empties a shared PROMETHEUS_MULTIPROC_DIR when it starts; this one only makes
    # sure it exists (emptying it here would drop the sync workers' live files when both share one).
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
