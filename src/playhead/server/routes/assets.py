"""Assets: upload (streamed to disk, then ingested), list, show, delete, and the source as HLS."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from playhead.media.ingest import ingest
from playhead.server.deps import engine
from playhead.server.engine import Engine
from playhead.server.upload import receive_file

router = APIRouter(prefix="/api/assets")
EngineDep = Annotated[Engine, Depends(engine)]


@router.post("", status_code=201)
async def upload(request: Request, e: EngineDep) -> JSONResponse:
    options = e.config.ingest
    incoming = e.config.data_dir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=incoming)
    try:
        received = incoming / tmp / "upload"
        name = await receive_file(request, received, options.limits.max_bytes)
        path = received.rename(received.with_name(name))  # errors then name the user's file
        asset = await asyncio.to_thread(ingest, path, e.config.data_dir, options, name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return JSONResponse(asset.public(), status_code=201)


@router.get("")
def list_assets(e: EngineDep) -> list[dict[str, Any]]:
    return [a.public() for a in e.catalog.assets()]


@router.get("/{asset_id}")
def show(asset_id: str, e: EngineDep) -> dict[str, Any]:
    return e.catalog.asset(asset_id).public()


@router.delete("/{asset_id}", status_code=204)
def delete(asset_id: str, e: EngineDep) -> None:
    e.catalog.delete_asset(asset_id)
