"""What a simulated day measured, for one strategy: viewers' stalls and seeks, the fleet's
worker-hours and utilisation, and a sample of the day every minute (for the plot)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playhead.bench.stats import percentile


@dataclass
class Results:
    strategy: str
    viewers: int = 0
    watch_s: float = 0.0  # playing time plus stalled time
    stall_s: float = 0.0
    stalls: int = 0
    seeks: list[float] = field(default_factory=list)  # a seek to its first frame, s
    starts: list[float] = field(default_factory=list)  # arrival to the first frame, s
    jobs: int = 0
    deadline_jobs: int = 0
    deadline_misses: int = 0
    worker_s: float = 0.0  # billed: from creation to gone
    busy_s: float = 0.0
    ready_s: float = 0.0  # started and not yet gone
    peak_workers: int = 0
    preempted: int = 0
    events: int = 0
    wall_s: float = 0.0
    series: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float:
            return percentile(values, q) or 0.0

        return {
            "strategy": self.strategy,
            "viewers": self.viewers,
            "stall_ratio": self.stall_s / self.watch_s if self.watch_s else 0.0,
            "stalls": self.stalls,
            "seek_p50_s": pct(self.seeks, 0.5),
            "seek_p95_s": pct(self.seeks, 0.95),
            "startup_p95_s": pct(self.starts, 0.95),
            "deadline_miss_ratio": self.deadline_misses / max(1, self.deadline_jobs),
            "worker_hours": self.worker_s / 3600,
            "utilisation": self.busy_s / self.ready_s if self.ready_s else 0.0,
            "peak_workers": self.peak_workers,
            "preempted": self.preempted,
            "jobs": self.jobs,
            "events": self.events,
            "wall_s": self.wall_s,
        }
