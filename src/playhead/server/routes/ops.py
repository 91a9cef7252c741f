"""Health, readiness, metrics and the effect catalogue."""

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


@router.get("/readyz")
async def readyz(rt: RuntimeDep) -> dict[str, Any]:
    """200 while this replica can serve: the queue and the store answer and it is not shutting
    down. Else the error's 503 (``draining``, ``queue_unavailable``, ``board_unavailable``,
    ``store_unavailable``): a load balancer sends requests elsewhere. ``/healthz`` is the
    liveness check; this one says whether to route here."""
    await rt.ready()
    return {"ok": True, "replica": rt.board.replica}


@router.get("/api/fleet")
async def fleet(rt: RuntimeDep) -> dict[str, Any]:
    """What the fleet needs now, per device class: ``desired_workers`` (what the autoscaler
    scales on), ``low_slack_jobs`` (its safety net) and what they are made of. Published by
    the planning replica, so every replica answers the same; 503 ``fleet_unknown`` while no
    planner has published recently (KEDA then holds its fallback)."""
    return await rt.fleet()


@router.get("/metrics")
async def metrics(rt: RuntimeDep) -> Response:
    await rt.refresh_gauges()
    return Response(rt.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/api/effects")
def effects() -> list[dict[str, Any]]:
    return [registry.describe(effect) for effect in registry.effects().values()]
