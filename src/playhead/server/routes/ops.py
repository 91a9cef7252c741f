"""Health, metrics and the effect catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from playhead.effects import registry
from playhead.server.deps import RuntimeDep

router = APIRouter()


@router.get("/healthz")
async def healthz(rt: RuntimeDep) -> dict[str, Any]:
    stats = await rt.stats()
    return {
        "ok": True,
        "replica": rt.board.replica,
        "planning": rt.planning.leading,
        "workers": stats["workers"],
        "jobs": stats["jobs"],
    }


@router.get("/metrics")
async def metrics(rt: RuntimeDep) -> Response:
    await rt.refresh_gauges()
    return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/api/effects")
def effects() -> list[dict[str, Any]]:
    return [registry.describe(effect) for effect in registry.effects().values()]
