"""The autoscaler as KEDA and the Kubernetes HPA apply it, and the strategies it is fed, for
the simulator.

KEDA polls a metric every ``poll_s`` and hands it to the HPA as an external metric of type
AverageValue; the HPA turns it into a replica count and applies its ``behavior``: scale up at
once, by at most ``up_percent`` % (or ``up_pods``) per ``up_period_s``; scale down only to the
highest recommendation of the last ``down_window_s``, by at most ``down_percent`` % per
``down_period_s``; and change nothing while the ratio is within the 10 % tolerance. The
defaults are the values of `deploy/keda-worker-*.yaml` (a test checks that they agree).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviour:
    min_replicas: int = 1
    max_replicas: int = 2000
    poll_s: float = 5.0
    up_percent: float = 100.0
    up_pods: int = 4
    up_period_s: float = 15.0
    down_window_s: float = 300.0
    down_percent: float = 10.0
    down_period_s: float = 60.0
    tolerance: float = 0.1


class Autoscaler:
    """One ScaledObject: metric values in, the Deployment's replica count out."""

    def __init__(self, behaviour: Behaviour, replicas: int) -> None:
        self.b = behaviour
        self.replicas = max(behaviour.min_replicas, replicas)
        self._recommendations: deque[tuple[float, int]] = deque()
        self._changes: deque[tuple[float, int]] = deque()  # (when, replicas before)

    def poll(self, now: float, metrics: list[tuple[float, float]]) -> int:
        """``metrics``: (value, target) of each trigger; the HPA takes the largest proposal."""
        b, current = self.b, self.replicas
        proposals = []
        for value, target in metrics:
            ratio = value / (target * max(current, 1))
            if current > 0 and abs(ratio - 1) <= b.tolerance:
                proposals.append(current)
            else:
                proposals.append(math.ceil(value / target - 1e-9))
        wanted = min(max(max(proposals, default=0), b.min_replicas), b.max_replicas)
        self._recommendations.append((now, wanted))
        while self._recommendations[0][0] < now - b.down_window_s:
            self._recommendations.popleft()
        if wanted > current:
            base = self._base(now, b.up_period_s, current, up=True)
            limit = max(base * (1 + b.up_percent / 100), base + b.up_pods)
            new = min(wanted, math.floor(limit))
        else:
            stable = max(r for _, r in self._recommendations)  # the down window
            base = self._base(now, b.down_period_s, current, up=False)
            floor = math.ceil(base * (1 - b.down_percent / 100))
            new = max(min(stable, current), floor, b.min_replicas)
        if new != current:
            self._changes.append((now, current))
        self.replicas = new
        return new

    def _base(self, now: float, period: float, current: int, up: bool) -> int:
        """The replica count at the start of the policy's period: a rate limit per period."""
        while self._changes and self._changes[0][0] < now - max(
            self.b.up_period_s, self.b.down_period_s
        ):
            self._changes.popleft()
        before = [r for t, r in self._changes if t >= now - period]
        if not before:
            return current
        return min(before) if up else max(before)


@dataclass(frozen=True)
class Strategy:
    """How the fleet is sized: ``demand`` (the `desired_workers` signal, with the low-slack
    safety net), ``queue`` (jobs waiting or running per worker, as a queue-length scaler
    does), or ``fixed`` (a constant fleet)."""

    kind: str
    target: float = 1.0  # queue: jobs per worker
    fixed: int = 0  # fixed: workers

    @property
    def label(self) -> str:
        if self.kind == "queue":
            return f"queue length ({self.target:g} jobs/worker)"
        if self.kind == "fixed":
            return f"fixed fleet ({self.fixed} workers)"
        return "desired_workers"
