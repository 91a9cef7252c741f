"""Assets: upload (streamed to disk, then ingested into the store), list, show, delete."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from playhead.server.deps import RuntimeDep
from playhead.server.masks import MaskRequest
from playhead.server.upload import receive_file

router = APIRouter(prefix="/api/assets")


@router.post("", status_code=201)
async def upload(request: Request, rt: RuntimeDep) -> JSONResponse:
    options = rt.config.ingest
    incoming = rt.config.data_dir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=incoming))
    try:
        received = tmp / "upload"
        name = await receive_file(request, received, options.limits.max_bytes)
        path = received.rename(received.with_name(name))  # errors then name the user's file
        asset = await asyncio.to_thread(rt.catalog.ingest, path, options, name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return JSONResponse(asset.public(), status_code=201)


@router.get("")
def list_assets(rt: RuntimeDep) -> list[dict[str, Any]]:
    return [a.public() for a in rt.catalog.assets()]


@router.get("/{asset_id}")
def show(asset_id: str, rt: RuntimeDep) -> dict[str, Any]:
    return rt.catalog.asset(asset_id).public()


@router.delete("/{asset_id}", status_code=204)
async def delete(asset_id: str, rt: RuntimeDep) -> None:
    await rt.delete_asset(asset_id)


@router.post("/{asset_id}/frames/{n}/mask")
async def mask(asset_id: str, n: int, body: MaskRequest, rt: RuntimeDep) -> dict[str, Any]:
    """The subject's mask on frame ``n`` from clicks (``points``, label 1 include, 0 exclude)
    and/or a ``box``, in frame pixels: ``{"score", "width", "height", "png"}`` with ``png`` a
    base64 8-bit PNG of the frame's size, 255 inside. The first click on a frame computes its
    embedding (seconds on a CPU); later clicks on it answer in tens of milliseconds."""
    return await asyncio.to_thread(rt.masks.mask, asset_id, n, body)
