"""Measured cost of rendering, per effect: the one piece of scheduler state that lives on.

Workers report how long each segment took; the server feeds that into `CostModel.update` and
hands the model to every `plan` call. It is plain data, updated by its owner and never read
from a clock, so a simulator can drive it like everything else in `scheduler/`. It is not
locked: an owner that updates it from several threads must serialise the calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DEFAULT_PRIOR = 0.05
"""Seconds per frame assumed before the first measurement: a mid-sized model on a CPU."""


@dataclass
class CostModel:
    """Exponentially weighted moving average of seconds per frame, per effect.

    An EWMA rather than a plain mean because the cost drifts (models warm up, the machine gets
    busier, a GPU appears) and the scheduler should follow within a few segments. The first
    measurement replaces the prior outright: one real sample beats any guess.
    """

    prior: float = DEFAULT_PRIOR
    alpha: float = 0.2
    per_frame: dict[str, float] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.prior) and self.prior > 0):
            raise ValueError(f"prior must be a positive number of seconds, got {self.prior!r}")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha!r}")

    def update(self, effect: str, seconds: float, frames: int) -> None:
        """Fold in one measurement: ``frames`` frames of ``effect`` took ``seconds``."""
        if frames <= 0:
            raise ValueError(f"expected a positive frame count, got {frames}")
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"expected a non-negative duration, got {seconds!r}")
        sample = seconds / frames
        old = self.per_frame.get(effect)
        self.per_frame[effect] = sample if old is None else old + self.alpha * (sample - old)
        self.samples[effect] = self.samples.get(effect, 0) + 1

    def seconds_per_frame(self, effect: str) -> float:
        return self.per_frame.get(effect, self.prior)

    def estimate(self, effect: str, frames: int) -> float:
        """Expected worker-seconds to render ``frames`` frames of ``effect``."""
        return self.seconds_per_frame(effect) * frames
