"""Prometheus metrics: what the viewer feels and what the operator scales on.

One registry per app, so several servers in one process (tests) never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# fine between 30 ms and 2 s, where segment render times of real models fall
RENDER_BUCKETS = (0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
WAIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
LEAD_BUCKETS = (-5.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.render_seconds = Histogram(
            "playhead_segment_render_seconds",
            "Wall time to render one segment (decode, effect, encode, store)",
            ["effect"],
            buckets=RENDER_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "playhead_queue_wait_seconds",
            "Time from submission to claim",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.deadline_misses = Counter(
            "playhead_deadline_misses_total",
            "Segments finished after a playing viewer needed them",
            registry=r,
        )
        self.lead_time = Histogram(
            "playhead_segment_lead_seconds",
            "Deadline minus completion time (negative = late)",
            buckets=LEAD_BUCKETS,
            registry=r,
        )
        self.jobs = Gauge("playhead_jobs", "Jobs by state", ["state"], registry=r)
        self.cache = Counter(
            "playhead_cache_requests_total", "Segment requests by result", ["result"], registry=r
        )
        self.busy = Gauge(
            "playhead_worker_busy_ratio", "Share of time workers spent on jobs", registry=r
        )
        self.workers = Gauge("playhead_workers", "Live in-process workers", registry=r)
        self.sessions = Gauge("playhead_sessions", "Open viewer sessions", registry=r)
        self.desired_workers = Gauge(
            "playhead_desired_workers",
            "Workers the fleet needs now, per device class (what the autoscaler scales on)",
            ["device"],
            registry=r,
        )
        self.low_slack_jobs = Gauge(
            "playhead_low_slack_jobs",
            "Queued jobs late or about to be, per device class (the autoscaler's safety net)",
            ["device"],
            registry=r,
        )
        self.store_bytes = Gauge("playhead_store_bytes", "Bytes in the segment cache", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
