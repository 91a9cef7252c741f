"""Exports: ``POST /api/renders/{id}/exports`` → 202 and a job to poll, then download the file."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict

from playhead.errors import PlayheadError
from playhead.media.export import EXTENSIONS, ExportFormat
from playhead.renders import check_export
from playhead.server.catalog import NotFoundError
from playhead.server.deps import engine
from playhead.server.engine import Engine
from playhead.server.exports import ExportJob

router = APIRouter()
EngineDep = Annotated[Engine, Depends(engine)]
log = logging.getLogger(__name__)


class ExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: ExportFormat = "mp4"


@router.post("/api/renders/{render_id}/exports", status_code=202)
async def create(render_id: str, body: ExportRequest, e: EngineDep) -> JSONResponse:
    render = e.catalog.render(render_id)
    check_export(render.effect, body.format)
    job, new = e.exporter.create(render, body.format)
    if new:
        e.spawn(_run(e, job))
    return JSONResponse(job.public(), status_code=202)


async def _run(e: Engine, job: ExportJob) -> None:
    render = e.catalog.render(job.render)
    segments = e.catalog.asset(render.asset).segments
    e.exports[render.id] = e.clock()
    e.request_replan()
    try:
        while True:
            ready = sum(e.is_ready(render, k) for k in range(segments))
            job.progress = 0.9 * ready / segments
            if ready == segments:
                break
            await asyncio.sleep(0.2)
        await asyncio.to_thread(e.exporter.write, job, render)
    except PlayheadError as err:
        job.state, job.error = "failed", err.message
    except Exception as err:
        log.exception("export %s failed", job.id)
        job.state, job.error = "failed", f"{type(err).__name__}: {err}"
    finally:
        if not any(
            j.render == render.id and j.state in ("rendering",) for j in e.exporter.jobs.values()
        ):
            e.exports.pop(render.id, None)


def _job(e: Engine, export_id: str) -> ExportJob:
    job = e.exporter.jobs.get(export_id)
    if job is None:
        raise NotFoundError(f"no export {export_id!r}")
    return job


@router.get("/api/exports/{export_id}")
def show(export_id: str, e: EngineDep) -> dict[str, Any]:
    return _job(e, export_id).public()


@router.get("/api/exports/{export_id}/file")
def download(export_id: str, e: EngineDep) -> FileResponse:
    job = _job(e, export_id)
    if job.state != "done":
        raise NotFoundError(f"export {export_id} is {job.state}, not done")
    render = e.catalog.render(job.render)
    stem = e.catalog.asset(render.asset).name.rsplit(".", 1)[0]
    name = f"{stem}-{render.effect}{EXTENSIONS[job.format]}"
    media = {"mp4": "video/mp4", "mov-alpha": "video/quicktime", "webm-alpha": "video/webm"}
    return FileResponse(
        job.path, media_type=media.get(job.format, "application/zip"), filename=name
    )
