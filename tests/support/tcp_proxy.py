"""A TCP proxy on 127.0.0.1 that a test can cut and restore: an outage of whatever sits behind it.

Put it between real processes and the test database (``DATABASE_URL`` pointing at the proxy): ``cut()``
aborts every open connection (the server "closed the connection unexpectedly") and stops listening (new
connections are refused); ``restore()`` listens on the same port again. The database itself never stops,
so the rest of the test run is unaffected. asyncio in a thread of its own; the upstream is a TCP address or
a Unix socket (the embedded PostgreSQL listens on one).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CuttableProxy:
    def __init__(
        self, *, unix_path: str | None = None, host: str | None = None, port: int | None = None
    ) -> None:
        self.unix_path, self.upstream_host, self.upstream_port = unix_path, host, port
        self.port = _free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    def _call(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self) -> CuttableProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def cut(self) -> None:
        """Refuse new connections and abort the open ones."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.unix_path:
            return await asyncio.open_unix_connection(self.unix_path)
        return await asyncio.open_connection(self.upstream_host, self.upstream_port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await self._open_upstream()
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, upstream_writer}
        self._writers |= pair
        try:
            await asyncio.gather(
                self._pipe(reader, upstream_writer),
                self._pipe(upstream_reader, writer),
                return_exceptions=True,
            )
        finally:
            self._writers -= pair
            for each in pair:
                each.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()  # one side gone: the other goes too, as with a dead server


@contextlib.contextmanager
def cuttable_proxy(**upstream: object) -> Iterator[CuttableProxy]:
    proxy = CuttableProxy(**upstream).start()  # type: ignore[arg-type]
    try:
        yield proxy
    finally:
        proxy.stop()
