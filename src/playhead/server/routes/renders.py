"""Renders and their HLS delivery: playlists, init segments, media segments, single frames."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import cv2
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from playhead.errors import PlayheadError
from playhead.media.hls import vod_playlist
from playhead.renders import Render
from playhead.scheduler import Session
from playhead.server.catalog import NotFoundError
from playhead.server.deps import engine
from playhead.server.engine import Engine
from playhead.worker.segment_job import init_segment

router = APIRouter()
EngineDep = Annotated[Engine, Depends(engine)]

SEGMENT_TYPE = "video/iso.segment"
IMMUTABLE = "public, max-age=31536000, immutable"  # content-addressed: never changes


class NotReadyError(PlayheadError, RuntimeError):
    status = 503
    code = "not_ready"


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset: str = Field(min_length=1, max_length=64)
    effect: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


def _describe(e: Engine, render: Render, states: bool = False) -> dict[str, Any]:
    asset = e.catalog.asset(render.asset)
    out: dict[str, Any] = {
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
    if states:
        out["segments"] = [
            {"index": k, "state": s.value} for k, s in enumerate(e.segment_states(render))
        ]
    return out


@router.post("/api/renders", status_code=201)
def create(body: RenderRequest, e: EngineDep) -> dict[str, Any]:
    asset = e.catalog.asset(body.asset)
    render = Render.create(asset, body.effect, body.params)
    e.catalog.add_render(render)
    return _describe(e, render)


@router.get("/api/renders/{render_id}")
def show(render_id: str, e: EngineDep) -> dict[str, Any]:
    return _describe(e, e.catalog.render(render_id), states=True)


def _variant(render: Render, variant: str) -> None:
    if variant not in render.variants:
        raise NotFoundError(f"render {render.id} has no variant {variant!r}")


@router.get("/api/renders/{render_id}/{variant}/index.m3u8")
def playlist(render_id: str, variant: str, e: EngineDep) -> Response:
    render = e.catalog.render(render_id)
    _variant(render, variant)
    asset = e.catalog.asset(render.asset)
    text = vod_playlist(asset.segment_counts(), asset.fps)
    return Response(text, media_type="application/vnd.apple.mpegurl")


@router.get("/api/renders/{render_id}/{variant}/init.mp4")
async def init_mp4(render_id: str, variant: str, e: EngineDep) -> Response:
    render = e.catalog.render(render_id)
    _variant(render, variant)
    asset = e.catalog.asset(render.asset)
    data = await asyncio.to_thread(init_segment, e.store, render, asset, variant)
    return Response(data, media_type="video/mp4", headers={"Cache-Control": IMMUTABLE})


@router.get("/api/renders/{render_id}/{variant}/{k}.m4s")
async def segment(render_id: str, variant: str, k: int, request: Request, e: EngineDep) -> Response:
    render = e.catalog.render(render_id)
    _variant(render, variant)
    asset = e.catalog.asset(render.asset)
    if not 0 <= k < asset.segments:
        raise NotFoundError(f"segment {k} is out of range 0..{asset.segments - 1}")
    _infer_session(request, e, render, asset.segment_range(k).start)
    ready = e.is_ready(render, k)
    e.metrics.cache.labels(result="hit" if ready else "miss").inc()
    if not ready and not await e.wait_ready(render, k, e.config.segment_wait_s):
        raise NotReadyError(f"segment {k} is not rendered yet; retry shortly")
    path = e.store.path(render.segment_key(variant, k))
    if path is None:
        raise NotReadyError(f"segment {k} was evicted; retry shortly")
    return FileResponse(path, media_type=SEGMENT_TYPE, headers={"Cache-Control": IMMUTABLE})


def _infer_session(request: Request, e: Engine, render: Render, frame: int) -> None:
    """A player fetching segments plays around them: an HLS client without our WebSocket still
    gets the segments ahead of it rendered in time."""
    if e.watched(render.id):
        return  # a player that reports over the WebSocket: its reports are better than guesses
    client = request.client.host if request.client else "?"
    viewer = f"http:{client}:{request.headers.get('user-agent', '')}:{render.id}"
    e.report(viewer, Session(viewer, render.id, frame, True, 1.0, e.clock()), inferred=True)


@router.get("/api/renders/{render_id}/frames/{n}.png")
async def frame(render_id: str, n: int, e: EngineDep, variant: str = "composite") -> Response:
    """One processed frame: the fast path for scrubbing while paused."""
    render = e.catalog.render(render_id)
    _variant(render, variant)
    asset = e.catalog.asset(render.asset)
    if not 0 <= n < asset.frames:
        raise NotFoundError(f"frame {n} is out of range 0..{asset.frames - 1}")
    rgb = await asyncio.to_thread(e.frames.render_frame, render, n, variant)
    _, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return Response(png.tobytes(), media_type="image/png", headers={"Cache-Control": IMMUTABLE})


@router.get("/api/assets/{asset_id}/index.m3u8")
def source_playlist(asset_id: str, e: EngineDep) -> Response:
    """The untouched source, for side-by-side viewing: a passthrough render, cached like any."""
    render = e.source_render(asset_id)
    asset = e.catalog.asset(asset_id)
    base = f"/api/renders/{render.id}/composite"
    text = vod_playlist(
        asset.segment_counts(), asset.fps, init_uri=f"{base}/init.mp4", uri=base + "/{k}.m4s"
    )
    return Response(text, media_type="application/vnd.apple.mpegurl")
