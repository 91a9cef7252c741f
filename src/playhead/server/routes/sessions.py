"""The session WebSocket: the browser reports its playhead; we push segment states and stats.

Client → server::

    {"type": "watch", "render": "<id>"}
    {"type": "playhead", "frame": 412, "playing": true, "rate": 1.0}

Server → client::

    {"type": "render", "render": "<id>", "segments": ["ready", "queued", ...]}
    {"type": "segment", "render": "<id>", "index": 17, "state": "ready"}
    {"type": "stats", ...}
    {"type": "error", "message": "..."}

A malformed message gets an error back and the session goes on. Each connection owns two
tasks (reading, writing); when either ends the other is cancelled, and the session is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from playhead.errors import PlayheadError
from playhead.scheduler import Session
from playhead.server.deps import ws_runtime
from playhead.server.runtime import Runtime
from playhead.server.viewers import segment_message

router = APIRouter()

OUTBOX = 512  # messages waiting to be sent; past that the client gets a fresh snapshot
STATS_EVERY_S = 1.0


class Watch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["watch"]
    render: str = Field(min_length=1, max_length=64)


class Playhead(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["playhead"]
    frame: int = Field(ge=0, le=10_000_000)
    playing: bool
    rate: float = Field(1.0, ge=0, le=16)


Message = TypeAdapter(Annotated[Watch | Playhead, Field(discriminator="type")])


@router.websocket("/api/sessions")
async def session(websocket: WebSocket) -> None:
    rt = ws_runtime(websocket)
    await websocket.accept()
    conn = _Connection(websocket, rt)
    try:
        await conn.serve()
    finally:
        with contextlib.suppress(PlayheadError):  # the board is down: its state expires
            await asyncio.shield(rt.viewers.leave(conn.viewer))


class _Connection:
    def __init__(self, websocket: WebSocket, runtime: Runtime) -> None:
        self.ws = websocket
        self.rt = runtime
        self.viewer = f"ws:{uuid.uuid4().hex}"
        self.render: str | None = None
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(OUTBOX)
        self.resync = False

    async def serve(self) -> None:
        tasks = [
            asyncio.create_task(self._read(), name="ws-read"),
            asyncio.create_task(self._write(), name="ws-write"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if (
                    not t.cancelled()
                    and t.exception()
                    and not isinstance(t.exception(), WebSocketDisconnect)
                ):
                    raise t.exception()  # type: ignore[misc]
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                    await t

    def push(self, message: dict[str, Any]) -> None:
        try:
            self.outbox.put_nowait(message)
        except asyncio.QueueFull:
            self.resync = True  # a slow client: drop the detail, send a snapshot later

    async def _read(self) -> None:
        while True:
            text = await self.ws.receive_text()
            try:
                msg = Message.validate_python(json.loads(text))
                await self._handle(msg)
            except (json.JSONDecodeError, ValidationError) as e:
                self.push({"type": "error", "message": _explain(e)})
            except PlayheadError as e:
                self.push({"type": "error", "message": e.message})

    async def _handle(self, msg: Watch | Playhead) -> None:
        rt = self.rt
        if isinstance(msg, Watch):
            render = await asyncio.to_thread(rt.catalog.render, msg.render)
            self.render = render.id
            # where the viewer is comes with its first playhead report; until then it is a
            # paused viewer at the start, which asks for nothing urgent
            await rt.viewers.report(
                self.viewer, Session(self.viewer, render.id, 0, False, 1.0, rt.clock())
            )
            rt.viewers.attach(self.viewer, self.push)
            self.push(await self._snapshot())
            return
        if self.render is None:
            self.push({"type": "error", "message": "send a watch message first"})
            return
        render = await asyncio.to_thread(rt.catalog.render, self.render)
        frames = (await asyncio.to_thread(rt.catalog.asset, render.asset)).frames
        frame = min(msg.frame, frames - 1)
        rate = msg.rate if math.isfinite(msg.rate) else 1.0
        await rt.viewers.report(
            self.viewer, Session(self.viewer, self.render, frame, msg.playing, rate, rt.clock())
        )

    async def _snapshot(self) -> dict[str, Any]:
        assert self.render is not None
        render = await asyncio.to_thread(self.rt.catalog.render, self.render)
        return segment_message(render.id, await self.rt.readiness.states(render))

    async def _write(self) -> None:
        while True:
            try:
                msg = await asyncio.wait_for(self.outbox.get(), STATS_EVERY_S)
            except TimeoutError:
                msg = {"type": "stats", **(await self.rt.stats())}
            if self.resync and self.render is not None:
                self.resync = False
                while not self.outbox.empty():
                    self.outbox.get_nowait()
                msg = await self._snapshot()
            await self.ws.send_json(msg)


def _explain(e: Exception) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"malformed JSON: {e.msg}"
    assert isinstance(e, ValidationError)
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}" for err in e.errors()
    )
