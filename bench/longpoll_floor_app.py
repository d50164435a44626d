"""The floor under the long-poll benchmark: a bare ASGI application under the same uvicorn worker that
answers the same long-polls with nothing but the waiting (no Django, no authentication, no database, no
Redis; each answer's bytes built once per commit). ``bench/longpoll_bench.py`` runs it beside the async
tier with the same waiters and load: what the server, the client and the machine cost by themselves.

``GET /api/workflow/events``: without ``after``, an empty page at once; with it, a waiter whose bearer
token is listed in ``FLOOR_IN_SCOPE`` (a file, one token per line) waits for the next commit, any other
until its ``wait`` is up. ``POST /commit?id=…`` is a commit: every waiting in-scope waiter is answered with
that id as its one event.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

IN_SCOPE = set(Path(os.environ["FLOOR_IN_SCOPE"]).read_text().split())
_commit: asyncio.Future | None = None


def _body(events: list[dict], cursor: str) -> bytes:
    return json.dumps({"events": events, "next": cursor, "has_more": False}).encode()


async def _answer(send: Any, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict, receive: Any, send: Any) -> None:
    global _commit
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    query = parse_qs(scope["query_string"].decode())
    if scope["method"] == "POST":  # a commit
        if _commit is not None:
            _commit.set_result(_body([{"aggregate_id": query["id"][0]}], query["id"][0]))
            _commit = None
        await _answer(send, b"{}")
        return
    if "after" not in query:
        await _answer(send, _body([], "0"))
        return
    token = dict(scope["headers"]).get(b"authorization", b"").decode().removeprefix("Bearer ")
    wait = float(query.get("wait", ["0"])[0])
    if token not in IN_SCOPE:
        await asyncio.sleep(wait)
        await _answer(send, _body([], query["after"][0]))
        return
    if _commit is None:
        _commit = asyncio.get_running_loop().create_future()
    try:
        body = await asyncio.wait_for(asyncio.shield(_commit), wait)
    except TimeoutError:
        body = _body([], query["after"][0])
    await _answer(send, body)
