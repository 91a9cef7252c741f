"""A small TCP load balancer: each connection goes to the next replica that accepts it.

It works below HTTP, so plain requests, keep-alive and WebSocket upgrades all pass through
unchanged, like an L4 load balancer in front of a Kubernetes Service. A replica that refuses
connections (killed, restarting) is skipped; the connections it held simply end, and the
clients reconnect — to another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections.abc import Sequence

log = logging.getLogger(__name__)


class RoundRobinProxy:
    def __init__(self, port: int, backends: Sequence[int], host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.backends = list(backends)
        self._next = itertools.cycle(range(len(self.backends)))
        self._server: asyncio.Server | None = None

    async def serve(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        async with self._server:
            await self._server.serve_forever()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            port = self.backends[next(self._next)]
            try:
                return await asyncio.open_connection(self.host, port)
            except OSError:
                continue  # that replica is down: the next one
        log.warning("no replica accepts connections")
        return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


class ProxyThread:
    """The proxy on its own event loop in a background thread (for tests and the CLI)."""

    def __init__(self, port: int, backends: Sequence[int]) -> None:
        self.proxy = RoundRobinProxy(port, backends)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="proxy", daemon=True)
        self._task: asyncio.Task[None] | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self.proxy.serve())
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)
        pending = asyncio.all_tasks(self._loop)  # connections still being piped
        for t in pending:
            t.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)
