"""How many workers the fleet needs now, per device class: the figure the autoscaler scales on.

A GPU node takes a minute or more to start, and a viewer's next segment is due in seconds; so
the fleet must scale on what its viewers are about to need, not on a queue that is already
late. The demand for one device class, in workers:

- **playing**: every playing session needs ``cost-per-frame × fps × rate`` worker-seconds per
  second of wall time to keep up, for as long as it plays. This is known the moment a viewer
  presses play, before a single job is late.
- **backlog**: queued work nobody watches yet (paused prefetch, exports, requests without a
  playing viewer), spread over ``backlog_s``: it should be done soon, not now.
- **urgent**: queued work whose slack (deadline − now − estimated render time) is under
  ``slack_s`` — late or about to be — spread over ``drain_s``, about the time a new worker
  takes to start: a burst the fleet clears by itself in seconds (a seek, a viewer starting)
  asks for little, work that stays late (the cost model is wrong, the fleet is short) asks for
  more the longer it piles up. A playing session's far horizon is not counted: its steady
  rate above covers it.

``desired = ceil(playing / utilisation + backlog / backlog_s + urgent / drain_s)``, where
``playing`` is the larger of now and its trend of the last ``trend_s`` carried ``lead_s``
ahead (a worker ordered now is ready that much later, so it must be ordered for the viewers
who will be playing then), times the measured work ratio (see `Trend`: seeks cost more,
replays of cached segments less). Utilisation below 1 leaves room for the variance of
arrivals and render times (a fleet at 100 % makes every seek wait). ``low_slack_jobs``
counts the urgent jobs: the autoscaler's second trigger, a safety net for when the cost model
is wrong.

Pure, like the rest of `scheduler/`: it reads a `Planner` (which every planning replica
rebuilds from shared state) and the clock it is given.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from playhead.scheduler.planner import Planner
from playhead.scheduler.priority import Priority, priority_class


@dataclass(frozen=True)
class ScalingRule:
    utilisation: float = 0.9  # the busy share a worker is planned for
    backlog_s: float = 120.0  # unwatched work should be done within this
    slack_s: float = 4.0  # queued work with less slack than this is urgent
    drain_s: float = 60.0  # urgent work is asked to be cleared within this
    lead_s: float = 60.0  # how far ahead the playing load is projected: about a node's start
    trend_s: float = 120.0  # the playing load's trend is measured over this

    def __post_init__(self) -> None:
        if not 0 < self.utilisation <= 1:
            raise ValueError(f"utilisation must be in (0, 1], got {self.utilisation!r}")
        if min(self.backlog_s, self.slack_s, self.drain_s, self.trend_s) <= 0 or self.lead_s < 0:
            raise ValueError("backlog_s, slack_s, drain_s and trend_s must be positive")


@dataclass(frozen=True)
class ClassDemand:
    """One device class's demand, in worker-seconds per second (``playing``) and worker-
    seconds of queued work (``backlog``, ``urgent``), and the workers it asks for."""

    playing: float = 0.0
    backlog: float = 0.0
    urgent: float = 0.0
    low_slack_jobs: int = 0
    desired_workers: int = 0
    projected: float = 0.0  # the playing load ``lead_s`` ahead, by its trend

    def as_json(self) -> dict[str, float | int]:
        return {
            "desired_workers": self.desired_workers,
            "low_slack_jobs": self.low_slack_jobs,
            "playing": round(self.playing, 3),
            "backlog": round(self.backlog, 3),
            "urgent": round(self.urgent, 3),
            "projected": round(self.projected, 3),
        }


class Trend:
    """What the demand signal remembers from one call to the next, per device class: the
    playing load's recent samples (to project it ``lead_s`` ahead; upward only — a falling load
    is followed by the autoscaler's slow scale-down anyway, and a dip must not take workers the
    next minute needs) and the work viewers' deadlines actually cost.

    The second matters because a viewer does not play straight through: each seek or rate
    change orders a new horizon of segments (and a seek away leaves work behind), while a
    replay or a seek back finds the segments cached and costs nothing. The ratio of the work
    done for playing viewers to their straight-through load over the last ``trend_s × 2``
    (the *work ratio*, kept between ``MIN_RATIO`` and ``MAX_RATIO``) scales the playing load
    to what the fleet really spends on it.
    """

    MIN_RATIO = 0.2
    MAX_RATIO = 4.0

    def __init__(self) -> None:
        self._samples: dict[str, deque[tuple[float, float]]] = {}
        self._work: dict[str, deque[tuple[float, float]]] = {}

    def worked(self, klass: str, now: float, seconds: float) -> None:
        """A job with a playing viewer's deadline took ``seconds`` of a worker."""
        self._work.setdefault(klass, deque()).append((now, seconds))

    def project(self, klass: str, now: float, load: float, rule: ScalingRule) -> float:
        samples = self._samples.setdefault(klass, deque())
        samples.append((now, load))
        window = 2 * rule.trend_s
        while samples[0][0] < now - window:
            samples.popleft()
        recent = [(t, x) for t, x in samples if t >= now - rule.trend_s]
        t0, l0 = recent[0]
        slope = (load - l0) / (now - t0) if now - t0 >= rule.trend_s / 4 else 0.0
        return (load + max(0.0, slope) * rule.lead_s) * self._ratio(klass, now, samples, window)

    def _ratio(
        self, klass: str, now: float, samples: deque[tuple[float, float]], window: float
    ) -> float:
        work = self._work.setdefault(klass, deque())
        while work and work[0][0] < now - window:
            work.popleft()
        played = sum(  # the straight-through load, integrated over the window
            (t1 - t0) * (x0 + x1) / 2
            for (t0, x0), (t1, x1) in zip(samples, list(samples)[1:], strict=False)
        )
        if played < 30.0:  # under half a worker-minute: too little to measure a ratio
            return 1.0
        return min(self.MAX_RATIO, max(self.MIN_RATIO, sum(s for _, s in work) / played))


def demand(
    planner: Planner,
    now: float,
    klass_of: Callable[[str], str],
    rule: ScalingRule = ScalingRule(),
    classes: tuple[str, ...] = (),
    trend: Trend | None = None,
) -> dict[str, ClassDemand]:
    """The demand of every device class (those in ``classes`` always appear, at 0 if idle);
    ``klass_of`` maps an effect name to the class its jobs are routed to. With a ``trend``
    (kept by the caller from one call to the next) the playing load is projected ahead."""
    cost = planner.cost
    playing: dict[str, float] = dict.fromkeys(classes, 0.0)
    backlog = dict(playing)
    urgent = dict(playing)
    low: dict[str, int] = dict.fromkeys(classes, 0)
    for effect, fps_rate in planner.playing_rate().items():
        k = klass_of(effect)
        playing[k] = playing.get(k, 0.0) + cost.seconds_per_frame(effect) * fps_rate
    for r in planner.renders.values():
        if not r.queued:
            continue
        info = r.info
        k = klass_of(info.effect)
        spf = cost.seconds_per_frame(info.effect)
        for job_id, priority in r.queued.items():
            work = spf * info.segment_frames
            klass = priority_class(priority) if math.isfinite(priority) else Priority.EXPORT
            deadline = planner.deadlines.get(job_id)
            if klass is Priority.URGENT or (
                deadline is not None and deadline - now - work < rule.slack_s
            ):
                urgent[k] = urgent.get(k, 0.0) + work
                low[k] = low.get(k, 0) + 1
            elif klass is not Priority.PLAYING:
                backlog[k] = backlog.get(k, 0.0) + work
    out: dict[str, ClassDemand] = {}
    for k in sorted({*playing, *backlog, *urgent}):
        p, b, u = playing.get(k, 0.0), backlog.get(k, 0.0), urgent.get(k, 0.0)
        ahead = trend.project(k, now, p, rule) if trend is not None else p
        need = ahead / rule.utilisation + b / rule.backlog_s + u / rule.drain_s
        out[k] = ClassDemand(p, b, u, low.get(k, 0), math.ceil(need - 1e-9), ahead)
    return out
