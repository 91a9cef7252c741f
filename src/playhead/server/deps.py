"""Request-scoped access to the runtime's parts."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request, WebSocket

from playhead.server.runtime import Runtime


def runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


def ws_runtime(websocket: WebSocket) -> Runtime:
    return cast(Runtime, websocket.app.state.runtime)


RuntimeDep = Annotated[Runtime, Depends(runtime)]
