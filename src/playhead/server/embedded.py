"""A real `playhead serve` app on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from playhead.server.app import create_app
from playhead.server.config import ServeConfig


@dataclass
class Running:
    url: str
    port: int
    app: object

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/api/sessions"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(config: ServeConfig) -> Iterator[Running]:
    app = create_app(config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield Running(f"http://127.0.0.1:{port}", port, app)
    finally:
        server.should_exit = True
        thread.join(60)
