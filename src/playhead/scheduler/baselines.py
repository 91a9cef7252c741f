"""Baseline policies, kept to measure ``deadline`` against (``playhead bench qoe``).

Each is the strongest sensible version of a simple idea, so that a win over it means
something: both share work between viewers, skip settled segments, cancel work nobody wants
any more and serve exports (after everything else), exactly as ``deadline`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from playhead.scheduler._demand import Demand
from playhead.scheduler.cost import CostModel
from playhead.scheduler.model import RenderState, Session
from playhead.scheduler.plan import PolicyBase, Shares
from playhead.scheduler.priority import Priority


@dataclass(frozen=True)
class OnDemandPolicy(PolicyBase):
    """Render only what is requested over HTTP, first come first served.

    The key is the time the request arrived (``RenderState.requested``, and ``urgent``, the
    first segment after a seek, which the player is about to request); sessions' playheads are
    ignored, so nothing is rendered ahead and every segment is a wait for the player.
    """

    def edges(
        self, planned: Session, old: Session, new: Session, render: RenderState
    ) -> set[int] | None:
        return set()  # playheads change nothing

    def needs(
        self,
        demand: Demand,
        now: float,
        render: RenderState,
        sessions: Sequence[Session],
        shares: Shares,
        cost: CostModel,
    ) -> None:
        for k, since in {**render.requested, **render.urgent}.items():
            demand.need(render, k, Priority.URGENT, since)
        demand.need_export(render)


@dataclass(frozen=True)
class SequentialPolicy(PolicyBase):
    """Render each watched render from frame 0 in order, like a batch job.

    The key is the segment index, so several watched renders advance side by side; playheads,
    seeks and HTTP requests change nothing.
    """

    def edges(
        self, planned: Session, old: Session, new: Session, render: RenderState
    ) -> set[int] | None:
        return set()  # playheads change nothing while someone watches

    def needs(
        self,
        demand: Demand,
        now: float,
        render: RenderState,
        sessions: Sequence[Session],
        shares: Shares,
        cost: CostModel,
    ) -> None:
        if sessions:
            for k in range(render.info.segments):
                demand.need(render, k, Priority.PLAYING, float(k))
        demand.need_export(render)
