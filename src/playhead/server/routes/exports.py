"""Exports: ``POST /api/renders/{id}/exports`` → 202 and a job to poll, then download the file."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from playhead.exports import MEDIA_TYPES
from playhead.media.export import EXTENSIONS, ExportFormat
from playhead.server.deps import RuntimeDep

router = APIRouter()


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: ExportFormat = "mp4"


@router.post("/api/renders/{render_id}/exports", status_code=202)
async def create(render_id: str, body: ExportRequest, rt: RuntimeDep) -> JSONResponse:
    render = await asyncio.to_thread(rt.catalog.render, render_id)
    record = await rt.exports.create(render, body.format)
    return JSONResponse(record.public(await rt.exports.progress(record)), status_code=202)


@router.get("/api/exports/{export_id}")
async def show(export_id: str, rt: RuntimeDep) -> dict[str, Any]:
    record = await rt.exports.show(export_id)
    return record.public(await rt.exports.progress(record))


@router.get("/api/exports/{export_id}/file")
async def download(export_id: str, rt: RuntimeDep) -> StreamingResponse:
    record, chunks = await rt.exports.file(export_id)
    render = await asyncio.to_thread(rt.catalog.render, record.render)
    asset = await asyncio.to_thread(rt.catalog.asset, render.asset)
    name = f"{asset.name.rsplit('.', 1)[0]}-{render.effect}{EXTENSIONS[record.format]}"
    return StreamingResponse(
        chunks,
        media_type=MEDIA_TYPES.get(record.format, "application/zip"),
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
