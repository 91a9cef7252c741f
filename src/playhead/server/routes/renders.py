"""Renders and their HLS delivery: playlists, init segments, media segments, single frames."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Coroutine
from typing import Any

import cv2
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from playhead.board import RequestDone, Requested
from playhead.errors import NotFoundError, PlayheadError
from playhead.media.asset import Asset
from playhead.media.hls import vod_playlist
from playhead.renders import Render
from playhead.scheduler import Session
from playhead.server.deps import RuntimeDep
from playhead.server.ranges import ranged
from playhead.server.readiness import SegmentFailedError
from playhead.server.runtime import Runtime
from playhead.worker.segment_job import init_segment

router = APIRouter()

SEGMENT_TYPE = "video/iso.segment"
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}  # content-addressed


class NotReadyError(PlayheadError, RuntimeError):
    status = 503
    code = "not_ready"


class ClientGoneError(PlayheadError, ConnectionError):
    status = 499  # nobody reads it: the client is gone
    code = "client_gone"


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset: str = Field(min_length=1, max_length=64)
    effect: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


async def _lookup(rt: Runtime, render_id: str, variant: str | None = None) -> tuple[Render, Asset]:
    render = await asyncio.to_thread(rt.catalog.render, render_id)
    if variant is not None and variant not in render.variants:
        raise NotFoundError(f"render {render.id} has no variant {variant!r}")
    return render, await asyncio.to_thread(rt.catalog.asset, render.asset)


def _describe(render: Render, asset: Asset) -> dict[str, Any]:
    return {
        "id": render.id,
        "asset": render.asset,
        "effect": render.effect,
        "version": render.version,
        "params": render.params,
        "segments": asset.segments,
        "segment_frames": asset.segment_frames,
        "frames": asset.frames,
        "fps": float(asset.fps),
        "playlists": {v: f"/api/renders/{render.id}/{v}/index.m3u8" for v in render.variants},
    }


@router.post("/api/renders", status_code=201)
def create(body: RenderRequest, rt: RuntimeDep) -> dict[str, Any]:
    asset = rt.catalog.asset(body.asset)
    render = Render.create(asset, body.effect, body.params)
    rt.route_effect(render.effect)  # refused now if no worker of the fleet can run it
    rt.catalog.add_render(render)
    return _describe(render, asset)


@router.get("/api/renders/{render_id}")
async def show(render_id: str, rt: RuntimeDep) -> dict[str, Any]:
    render, asset = await _lookup(rt, render_id)
    out = _describe(render, asset)
    states = await rt.readiness.states(render)
    # the cache unit: segments of two renders with the same unit are the same bytes
    out["segments"] = [
        {"index": k, "state": s.value, "unit": render.unit(k)} for k, s in enumerate(states)
    ]
    return out


@router.get("/api/renders/{render_id}/{variant}/index.m3u8")
async def playlist(render_id: str, variant: str, rt: RuntimeDep) -> Response:
    _, asset = await _lookup(rt, render_id, variant)
    text = vod_playlist(asset.segment_counts(), asset.fps)
    return Response(text, media_type="application/vnd.apple.mpegurl")


@router.get("/api/renders/{render_id}/{variant}/init.mp4")
async def init_mp4(render_id: str, variant: str, rt: RuntimeDep) -> Response:
    render, asset = await _lookup(rt, render_id, variant)
    data = await asyncio.to_thread(init_segment, rt.store, render, asset, variant)
    return Response(data, media_type="video/mp4", headers=IMMUTABLE)


@router.get("/api/renders/{render_id}/{variant}/{k}.m4s")
async def segment(
    render_id: str, variant: str, k: int, request: Request, rt: RuntimeDep
) -> Response:
    render, asset = await _lookup(rt, render_id, variant)
    if not 0 <= k < asset.segments:
        raise NotFoundError(f"segment {k} is out of range 0..{asset.segments - 1}")
    await _infer_session(request, rt, render, asset.segment_range(k).start)
    data = await rt.readiness.fetch(render, variant, k)
    rt.metrics.cache.labels(result="hit" if data is not None else "miss").inc()
    if data is None:
        await _first(_wait_for(rt, render, k), _disconnected(request))
        data = await rt.readiness.fetch(render, variant, k)
        if data is None:
            raise NotReadyError(f"segment {k} was evicted; retry shortly")
    return ranged(data, request.headers.get("range"), SEGMENT_TYPE, IMMUTABLE)


async def _wait_for(rt: Runtime, render: Render, k: int) -> None:
    """Ask the planner for segment k (via the board) and wait, bounded, until it is ready;
    the request's need ends with the request, however it ends. A segment that failed for good
    recently answers at once with the cause."""
    owner = f"{rt.board.replica}:{uuid.uuid4().hex[:12]}"
    await rt.board.publish(Requested(render=render.id, segment=k, owner=owner, at=rt.clock()))
    try:
        error = await rt.readiness.failure(render, k)  # while the planner hears the need
        if error is not None:
            raise SegmentFailedError(f"segment {k} of render {render.id} failed: {error}")
        if not await rt.readiness.wait(render, k, rt.config.segment_wait_s):
            raise NotReadyError(f"segment {k} is not rendered yet; retry shortly")
    finally:
        done = RequestDone(render=render.id, segment=k, owner=owner)
        with contextlib.suppress(PlayheadError):  # the board is down: its state expires
            await asyncio.shield(rt.board.publish(done))


async def _disconnected(request: Request) -> None:
    """Return when the client goes away (a GET has no body left to read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _first(work: Coroutine[Any, Any, None], gone: Coroutine[Any, Any, None]) -> None:
    """Race the work against the client going away; cancel the loser. A client that left
    ends the wait at once (and so its request's need on the board)."""
    tasks = [asyncio.ensure_future(work), asyncio.ensure_future(gone)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if tasks[0] not in done:
        raise ClientGoneError("the client went away")
    tasks[0].result()


async def _infer_session(request: Request, rt: Runtime, render: Render, frame: int) -> None:
    """A player fetching segments plays around them: an HLS client without our WebSocket still
    gets the segments ahead of it rendered in time."""
    if rt.viewers.watched(render.id):
        return  # a player that reports over the WebSocket: its reports are better than guesses
    client = request.client.host if request.client else "?"
    viewer = f"http:{client}:{request.headers.get('user-agent', '')[:200]}:{render.id}"
    await rt.viewers.report(
        viewer, Session(viewer, render.id, frame, True, 1.0, rt.clock()), inferred=True
    )


@router.get("/api/renders/{render_id}/frames/{n}.png")
async def frame(render_id: str, n: int, rt: RuntimeDep, variant: str = "composite") -> Response:
    """One processed frame: the fast path for scrubbing while paused."""
    render, asset = await _lookup(rt, render_id, variant)
    if not 0 <= n < asset.frames:
        raise NotFoundError(f"frame {n} is out of range 0..{asset.frames - 1}")
    rgb = await asyncio.to_thread(rt.frames.render_frame, render, n, variant)
    _, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return Response(png.tobytes(), media_type="image/png", headers=IMMUTABLE)


@router.get("/api/assets/{asset_id}/index.m3u8")
def source_playlist(asset_id: str, rt: RuntimeDep) -> Response:
    """The untouched source, for side-by-side viewing: a passthrough render, cached like any."""
    asset = rt.catalog.asset(asset_id)
    render = Render.create(asset, "passthrough", {})
    rt.catalog.add_render(render)
    base = f"/api/renders/{render.id}/composite"
    text = vod_playlist(
        asset.segment_counts(), asset.fps, init_uri=f"{base}/init.mp4", uri=base + "/{k}.m4s"
    )
    return Response(text, media_type="application/vnd.apple.mpegurl")
