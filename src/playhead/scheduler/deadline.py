"""The ``deadline`` policy: render every segment a viewer is about to see before the playhead
gets there, nearest deadline first, and degrade predictably when the workers cannot keep up.

**Demand.** A playing session needs the segments from the one under its playhead to
``horizon_s`` of media time ahead (30 s, the buffer an HLS player aims for). A paused session
needs the segment under its playhead and ``paused_window_s`` after it (5 s). An export needs
every segment. A segment that is ready, running or failed is never submitted (see `SETTLED`).

**Priority** is a class, then a key in seconds (see `priority.py`); a segment that several
needs share is one job at the most urgent of their priorities, so viewers share work:

- URGENT (the first segment after a seek, or requested over HTTP and not ready unless a
  playing session's horizon already covers it beyond its next segment — a player filling its
  buffer): key = the time it became urgent, first come first served.
- PLAYING: key = the deadline ``reported_at + (first_frame(k) − playhead) / (fps · rate)``,
  which is ``reported_at`` for the segment under the playhead.
- PAUSED: the same formula, as if play were pressed when the report came.
- EXPORT: key = export request time + media time of the segment: in order, oldest export first.

**Degradation: what goes first, what never goes, and why.** Demand exceeds capacity when the
playing sessions together need more worker-seconds per second (Σ seconds-per-frame · fps ·
rate, from the cost model) than ``workers`` supply. Then:

1. *Lower classes wait.* Exports, then paused prefetch, get workers only when no playing
   segment is waiting: they lose nothing a viewer sees yet, while a playing viewer stalls.
2. *Overload is isolated, not shared.* Capacity is split max-min fairly between playing
   sessions (water-filling). A session whose need fits its share keeps its exact deadlines
   and its whole horizon. A session that asks for more — a high rate, an expensive effect —
   will stall whatever we do; its keys are postponed to when its share could finish them,
   ``max(deadline, now + W_k / share)`` with ``W_k`` the estimated work of its missing
   segments up to ``k`` (running ones included), and its horizon ends where ``W_k / share``
   exceeds the horizon's wall-clock length (``horizon_s / rate``), keeping at least
   ``min_segments``. Plain EDF would instead let the greediest session take every worker and
   make everyone late (the domino effect); this is the constant-bandwidth-server remedy. Its
   far horizon — lead it could not get in time anyway — is the first playing work dropped;
   it returns at the next plan as the backlog drains.
3. *Never the nearest segments.* Playback cannot skip a missing segment, so a segment that
   will be late is still the one its player waits on: it keeps its place and is never shed
   (the classic EDF cure of dropping late jobs does not apply to video).
4. *Deadlines are stall-aware.* A player cannot play past a segment that is not ready, so
   only the first missing segment ``j`` at or after the playhead may have a deadline in the
   past; each later one gets at least ``now + (first_frame(k) − first_frame(j)) / (fps ·
   rate)``. Otherwise a stalled or stale session's whole horizon looks overdue and EDF hands
   it every worker — the domino effect again.

When ``workers`` is 0 or less (capacity unknown, e.g. an API replica that does not see the
workers) rule 2 is off and the policy is plain EDF with stall-aware deadlines.

**Stability.** A session that plays steadily yields the same deadlines report after report, and
moves smaller than ``tolerance_s`` are not sent, so steady playback does not churn the queue.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from playhead.scheduler._demand import Demand
from playhead.scheduler.cost import CostModel
from playhead.scheduler.model import RenderState, SegmentState, Session
from playhead.scheduler.plan import PolicyBase, Shares
from playhead.scheduler.priority import Priority


@dataclass(frozen=True)
class DeadlinePolicy(PolicyBase):
    """Earliest deadline first over every session, with the degradation rules above."""

    horizon_s: float = 30.0
    paused_window_s: float = 5.0
    min_segments: int = 2
    tolerance_s: float = 0.1

    def __post_init__(self) -> None:
        if not (self.horizon_s > 0 and self.paused_window_s >= 0):
            raise ValueError("horizon_s must be positive and paused_window_s non-negative")
        if self.min_segments < 1 or self.tolerance_s < 0:
            raise ValueError("min_segments must be >= 1 and tolerance_s >= 0")

    def needs(
        self,
        demand: Demand,
        now: float,
        render: RenderState,
        sessions: Sequence[Session],
        shares: Shares,
        cost: CostModel,
    ) -> None:
        info = render.info
        prefetch: set[int] = set()  # segments a playing horizon orders by deadline
        for session in sessions:
            if session.moving:
                self._need_playing(demand, now, session, render, cost, shares.get(session.id))
                here = info.segment_of(session.playhead)
                last = self.horizon_end(session, render)
                prefetch.update(range(here + 2, last + 1))
            else:
                self._need_paused(demand, session, render)
        for k, since in render.urgent.items():
            demand.need(render, k, Priority.URGENT, since)
        for k, since in render.requested.items():
            # a player filling its buffer asks far ahead: that is ordered by its deadline,
            # or its far segments would jump ahead of another viewer's next one
            if k not in prefetch:
                demand.need(render, k, Priority.URGENT, since)
        demand.need_export(render)

    def edges(
        self, planned: Session, old: Session, new: Session, render: RenderState
    ) -> set[int] | None:
        """A viewer playing on undisturbed keeps its absolute deadlines: only the segments
        its playhead left behind and those its horizon reached change (and the two after
        the playhead, within which a request is urgent rather than prefetch). A seek, pause,
        rate change, or reports that drifted past the tolerance from the one its render was
        last planned with (``planned``), change everything."""
        if not (planned.moving and old.moving and new.moving):
            return None
        if not planned.rate == old.rate == new.rate:
            return None
        info = render.info
        speed = info.fps * new.rate
        expected = planned.playhead + (new.reported_at - planned.reported_at) * speed
        if abs(new.playhead - expected) > self.tolerance_s * speed:
            return None
        first_old, first_new = info.segment_of(old.playhead), info.segment_of(new.playhead)
        end_old, end_new = self.horizon_end(old, render), self.horizon_end(new, render)
        return {*range(first_old, first_new + 2), *range(end_old + 1, end_new + 1)}

    def horizon_end(self, session: Session, render: RenderState) -> int:
        """The last segment a session's horizon reaches, from where it was reported."""
        info = render.info
        window = self.horizon_s if session.moving else self.paused_window_s
        return info.segment_of(
            min(session.playhead, info.frames - 1) + _frames(window, info.fps) - 1
        )

    def _need_playing(
        self,
        demand: Demand,
        now: float,
        session: Session,
        render: RenderState,
        cost: CostModel,
        share: float | None,
    ) -> None:
        info = render.info
        playhead = min(session.playhead, info.frames - 1)
        speed = info.fps * session.rate
        last = self.horizon_end(session, render)
        states, seg = render.states, info.segment_frames
        stuck_at: int | None = None  # where the player must wait: the first missing frame
        work = 0.0  # estimated worker-seconds of this session's missing segments so far
        kept = 0
        only = demand.only if share is None else None  # held to a share: every k counts
        for k in range(info.segment_of(playhead), last + 1):
            state = states.get(k)
            if state is SegmentState.READY:
                continue
            start = k * seg
            if only is not None and k not in only:  # an incremental replan skips the rest
                if stuck_at is None:
                    stuck_at = max(playhead, start)
                continue
            deadline = session.reported_at + max(0, start - playhead) / speed
            if stuck_at is None:
                stuck_at = max(playhead, start)
            else:  # rule 4: the player cannot be past the first missing segment before now
                deadline = max(deadline, now + (start - stuck_at) / speed)
            key = deadline
            if share is not None:  # rule 2: this session asks for more than its share
                work += _work_left(now, render, k, cost)
                if kept >= self.min_segments and work / share > self.horizon_s / session.rate:
                    return
                key = max(key, now + work / share)
            if demand.need(render, k, Priority.PLAYING, key, deadline):  # False: settled
                kept += 1

    def _need_paused(self, demand: Demand, session: Session, render: RenderState) -> None:
        info = render.info
        playhead = min(session.playhead, info.frames - 1)
        speed = info.fps * (session.rate or 1.0)
        last = self.horizon_end(session, render)
        for k in range(info.segment_of(playhead), last + 1):
            ahead = max(0, info.first_frame(k) - playhead)
            demand.need(render, k, Priority.PAUSED, session.reported_at + ahead / speed)


def _work_left(now: float, render: RenderState, k: int, cost: CostModel) -> float:
    """Estimated worker-seconds still to spend on segment ``k`` (less for a running one)."""
    full = cost.estimate(render.info.effect, render.info.frame_range(k).count)
    if render.state(k) is SegmentState.RUNNING:
        since = render.running_since.get(k)
        if since is not None:
            return max(0.0, full - (now - since))
    elif render.state(k) is SegmentState.FAILED:
        return 0.0
    return full


def _frames(seconds: float, fps: float) -> int:
    """Frames in ``seconds`` of media, at least one (the frame under the playhead)."""
    return max(1, math.ceil(seconds * fps - 1e-9))
