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
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def serve(self, stop: asyncio.Event) -> None:
        """Accept until ``stop``; then close every connection and wait for their pipes."""
        server = await asyncio.start_server(self._accept, self.host, self.port)
        async with server:
            await stop.wait()
        for writer in list(self._writers):
            writer.close()  # both pipes of the connection see the end and finish
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        upstream = await self._connect()
        if upstream is None:
            writer.close()
            return
        up_reader, up_writer = upstream
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers.difference_update((writer, up_writer))

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
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="proxy", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.proxy.serve(self._stop))
        self._loop.close()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
