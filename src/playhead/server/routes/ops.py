"""Health, metrics and the effect catalogue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from playhead.effects import registry
from playhead.server.deps import engine
from playhead.server.engine import Engine

router = APIRouter()
EngineDep = Annotated[Engine, Depends(engine)]


@router.get("/healthz")
def healthz(e: EngineDep) -> dict[str, Any]:
    alive = sum(w.alive() for w in e.workers)
    return {"ok": True, "workers": alive, "jobs": e.queue.stats()}


@router.get("/metrics")
def metrics(e: EngineDep) -> Response:
    e.refresh_gauges()
    return Response(e.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/api/effects")
def effects() -> list[dict[str, Any]]:
    return [registry.describe(effect) for effect in registry.effects().values()]
