"""Request-scoped access to the engine."""

from __future__ import annotations

from typing import cast

from fastapi import Request, WebSocket

from playhead.server.engine import Engine


def engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


def ws_engine(websocket: WebSocket) -> Engine:
    return cast(Engine, websocket.app.state.engine)
