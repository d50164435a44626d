"""The async tier's ASGI entry point: ``uvicorn polaris.asgi:application`` (or gunicorn with
``-k uvicorn.workers.UvicornWorker``); see docs/operations.md.

Requests that wait (the event feed's long-polls) are served here on the event loop, so a waiting client
holds no worker; every other request goes to Django's own ASGI handler, so a client pointed at this tier
for everything still gets the whole API (each such request runs in Django's sync thread: fine for the odd
call, but route the API to the sync tier, gunicorn, for throughput — the proxy snippet in
docs/operations.md sends only the feed here). The routes name their applications by dotted path: the
ground imports no app.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "polaris.settings")

from django.core.asgi import get_asgi_application
from django.utils.module_loading import import_string

django_application = get_asgi_application()  # django.setup(): the settings' start-up checks run here

# Path (without a trailing slash) -> the ASGI application serving its GET requests on the event loop.
ASYNC_ROUTES = {"/api/workflow/events": "outbox.api.feed_async.event_feed_application"}
# Coroutines run when the server shuts down (the lifespan protocol).
ON_SHUTDOWN = ["outbox.api.feed_async.feed_tier_close"]

_routes = {path: import_string(target) for path, target in ASYNC_ROUTES.items()}


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for target in ON_SHUTDOWN:
                await import_string(target)()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "http" and scope["method"] == "GET":
        route = _routes.get(scope["path"].rstrip("/") or "/")
        if route is not None:
            await route(scope, receive, send)
            return
    await django_application(scope, receive, send)
