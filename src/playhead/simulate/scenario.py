"""What a simulated day looks like: the demand curve, the viewers' scripts, the effects, the
fleet's hardware. Everything random is drawn from seeded generators, one per viewer, so every
scaling strategy meets exactly the same viewers doing exactly the same things."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class EffectMix:
    """One effect of the simulated catalogue: its true cost on a worker of its device class
    (seconds per frame, the planner learns it from completions) and its share of viewers."""

    name: str
    seconds_per_frame: float
    share: float
    device: str = "cuda"
    evening: float = 1.0  # its share at the evening peak, relative to the rest of the day


DEFAULT_EFFECTS = (
    EffectMix("light", 0.002, 0.5),  # a small matte model on a GPU: 500 fps
    EffectMix("medium", 0.006, 0.35),
    # a large segmentation model (20 fps, the rotoscoping class), and the evening's favourite:
    # the work per viewer changes over the day, which a count of queued jobs cannot see
    EffectMix("heavy", 0.05, 0.15, evening=4.0),
)


@dataclass(frozen=True)
class Scenario:
    peak_viewers: int = 400
    day_s: float = 3600.0  # the period of the demand curve (a day, compressed: see docs)
    trough: float = 0.1  # concurrent viewers at night, as a share of the peak
    session_s: float = 300.0  # mean time a viewer stays
    clip_s: tuple[float, float] = (60.0, 600.0)
    fps: float = 25.0
    segment_frames: int = 25
    effects: tuple[EffectMix, ...] = DEFAULT_EFFECTS
    overhead_s: float = 0.05  # per segment: decode, encode, store
    jitter: float = 0.15  # render times vary by this (lognormal sigma)
    seek_every_s: float = 40.0  # mean time between seeks of one viewer
    pause_every_s: float = 60.0
    pause_s: tuple[float, float] = (3.0, 30.0)
    fast_share: float = 0.1  # viewers who watch at 2×
    start_s: float = 90.0  # a new worker's time from creation to its first claim (a GPU node)
    preempt_per_hour: float = 0.0  # spot preemptions, per worker per hour
    notice_s: float = 15.0  # what a pod gets of a spot notice (GKE: 15 s; deploy/worker-cuda.yaml)
    grace_s: float = 10.0  # the worker's drain (`playhead worker --grace`, as in deploy/)
    lease_s: float = 10.0
    warmup_s: float = 600.0  # not counted: the first viewers arriving at a fleet just started
    seed: int = 1

    def evening(self, t: float) -> float:
        """How close ``t`` is to the evening peak: 1 at the peak, 0 far from it."""
        x = (t % self.day_s) / self.day_s
        return math.exp(-(((x - 0.78) / 0.08) ** 2))

    def weights(self, t: float) -> list[float]:
        """The effects' shares among viewers arriving at ``t``."""
        bump = self.evening(t)
        return [e.share * (1 + (e.evening - 1) * bump) for e in self.effects]

    def concurrent(self, t: float) -> float:
        """Viewers expected at time ``t``: a quiet night, a midday peak and a higher evening
        one, as a day of a consumer video product looks."""
        x = (t % self.day_s) / self.day_s
        bumps = 0.7 * math.exp(-(((x - 0.45) / 0.1) ** 2)) + self.evening(t)
        peak = 0.7 * math.exp(-(((0.78 - 0.45) / 0.1) ** 2)) + 1.0
        return self.peak_viewers * (self.trough + (1 - self.trough) * min(1.0, bumps / peak))

    def arrival_rate(self, t: float) -> float:
        """Arrivals per second that keep ``concurrent`` viewers (Little's law, plus growth)."""
        dt = 1.0
        growth = (self.concurrent(t + dt) - self.concurrent(t)) / dt
        return max(0.0, self.concurrent(t) / self.session_s + growth)

    def mean_load(self, t: float | None = None) -> float:
        """Worker-seconds per second one playing viewer needs, over the effect mix at ``t``
        (None: the most expensive mix of the day, the evening's)."""
        weights = self.weights(0.78 * self.day_s if t is None else t)
        per_frame = sum(
            w * e.seconds_per_frame for w, e in zip(weights, self.effects, strict=True)
        ) / sum(weights)
        segment = per_frame + self.overhead_s / self.segment_frames
        return segment * self.fps * (1 + self.fast_share)


@dataclass(frozen=True)
class Action:
    at: float  # seconds after the viewer arrived
    kind: str  # "seek", "pause", "play", "rate", "leave"
    value: float = 0.0  # seek: the target as a share of the clip; rate: the rate


@dataclass(frozen=True)
class Script:
    effect: EffectMix
    frames: int
    actions: tuple[Action, ...]


def script(scenario: Scenario, viewer: int, arrival: float = 0.0) -> Script:
    """What viewer number ``viewer``, arriving at ``arrival``, will do: the same for every
    strategy (arrivals do not depend on the fleet either)."""
    rng = random.Random(f"{scenario.seed}:{viewer}")
    effect = rng.choices(scenario.effects, scenario.weights(arrival))[0]
    clip = rng.uniform(*scenario.clip_s)
    frames = max(scenario.segment_frames, int(clip * scenario.fps))
    stay = rng.expovariate(1 / scenario.session_s)
    actions: list[Action] = []
    t = 0.0
    while True:
        t += rng.expovariate(1 / scenario.seek_every_s + 1 / scenario.pause_every_s)
        if t >= stay:
            break
        if rng.random() < scenario.seek_every_s**-1 / (
            scenario.seek_every_s**-1 + scenario.pause_every_s**-1
        ):
            actions.append(Action(t, "seek", rng.random()))
        else:
            actions.append(Action(t, "pause"))
            t += rng.uniform(*scenario.pause_s)
            if t >= stay:
                break
            actions.append(Action(t, "play"))
    if rng.random() < scenario.fast_share:
        actions.append(Action(rng.uniform(0, stay / 2), "rate", 2.0))
    actions.sort(key=lambda a: a.at)
    actions.append(Action(stay, "leave"))
    return Script(effect, frames, tuple(actions))
