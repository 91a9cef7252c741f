"""Needs per render, plans for everything: what every policy shares.

A policy states what one render needs — given the sessions watching it and each session's
share of the workers — so the event-driven `Planner` replans only the render an event touches.
`plan` is the same computation over every render at once (the tests, the benchmarks and a new
planner's first plan use it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from playhead.scheduler._demand import Demand
from playhead.scheduler.cost import CostModel
from playhead.scheduler.model import Plan, RenderInfo, RenderState, Session
from playhead.scheduler.shares import fair_shares

Shares = Mapping[str, float | None]
"""Session id → the worker-seconds per second it is held to (None: all it asks for)."""


def load(session: Session, info: RenderInfo, cost: CostModel) -> float:
    """Worker-seconds per second a session needs to keep up (0 when it is not moving)."""
    if not session.moving:
        return 0.0
    return cost.seconds_per_frame(info.effect) * info.fps * session.rate


class PolicyBase(ABC):
    """A policy: `needs` for one render; `plan` for everything, derived from it."""

    tolerance_s: float = 0.0
    """Queued jobs whose priority moved less than this are left alone (no churn)."""

    @abstractmethod
    def needs(
        self,
        demand: Demand,
        now: float,
        render: RenderState,
        sessions: Sequence[Session],
        shares: Shares,
        cost: CostModel,
    ) -> None:
        """Record in ``demand`` every segment of ``render`` that is needed, and how badly.
        ``sessions`` are the sessions watching this render."""

    def edges(
        self, planned: Session, old: Session, new: Session, render: RenderState
    ) -> set[int] | None:
        """When a session reports ``new`` after ``old`` (same render; ``planned`` is the
        report its render was last planned with in full), the only segments whose needs can
        have changed; None when any may have. Planners use it to replan a steady viewer's
        report in O(1). The safe default: any may have."""
        return None

    def horizon_end(self, session: Session, render: RenderState) -> int:
        """The last segment a session's own needs reach (beyond it, nothing it wants is
        missing). The default: the segment under its playhead."""
        return render.info.segment_of(session.playhead)

    def plan(
        self,
        now: float,
        sessions: Sequence[Session],
        renders: Mapping[str, RenderState],
        queued: Mapping[str, float],
        cost: CostModel,
        workers: int,
    ) -> Plan:
        """Every render's needs, diffed against the whole queue.

        ``renders`` must hold every render that a session watches or an export needs; queued
        jobs of any other render are cancelled. ``queued`` is job id → priority of the jobs
        waiting in the queue. ``workers`` is the number of live workers; 0 or less: unknown.
        """
        watched = [s for s in sessions if s.render in renders]
        moving = [s for s in watched if s.moving]
        loads = [load(s, renders[s.render].info, cost) for s in moving]
        shares = dict(zip([s.id for s in moving], fair_shares(loads, workers), strict=True))
        by_render: dict[str, list[Session]] = {}
        for s in watched:
            by_render.setdefault(s.render, []).append(s)
        demand = Demand()
        for render_id, render in renders.items():
            self.needs(demand, now, render, by_render.get(render_id, []), shares, cost)
        return demand.plan(renders, queued, self.tolerance_s)
