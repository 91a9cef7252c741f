"""Baseline policies, kept to measure ``deadline`` against (``playhead bench qoe``).

Each is the strongest sensible version of a simple idea, so that a win over it means
something: both share work between viewers, skip settled segments, cancel work nobody wants
any more and serve exports (after everything else), exactly as ``deadline`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from playhead.scheduler._demand import Demand
from playhead.scheduler.cost import CostModel
from playhead.scheduler.model import Plan, RenderState, Session
from playhead.scheduler.priority import Priority


@dataclass(frozen=True)
class OnDemandPolicy:
    """Render only what is requested over HTTP, first come first served.

    The key is the time the request arrived (``RenderState.requested``, and ``urgent``, the
    first segment after a seek, which the player is about to request); sessions' playheads are
    ignored, so nothing is rendered ahead and every segment is a wait for the player.
    """

    def plan(
        self,
        now: float,
        sessions: Sequence[Session],
        renders: Mapping[str, RenderState],
        queued: Mapping[str, float],
        cost: CostModel,
        workers: int,
    ) -> Plan:
        demand = Demand()
        for render in renders.values():
            for k, since in {**render.requested, **render.urgent}.items():
                demand.need(render, k, Priority.URGENT, since)
            demand.need_export(render)
        return demand.plan(renders, queued)


@dataclass(frozen=True)
class SequentialPolicy:
    """Render each watched render from frame 0 in order, like a batch job.

    The key is the segment index, so several watched renders advance side by side; playheads,
    seeks and HTTP requests change nothing.
    """

    def plan(
        self,
        now: float,
        sessions: Sequence[Session],
        renders: Mapping[str, RenderState],
        queued: Mapping[str, float],
        cost: CostModel,
        workers: int,
    ) -> Plan:
        demand = Demand()
        for render_id in sorted({s.render for s in sessions if s.render in renders}):
            render = renders[render_id]
            for k in range(render.info.segments):
                demand.need(render, k, Priority.PLAYING, float(k))
        for render in renders.values():
            demand.need_export(render)
        return demand.plan(renders, queued)
