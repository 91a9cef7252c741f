"""Settings of one ``playhead serve`` process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playhead.media.ingest import IngestOptions


@dataclass(frozen=True)
class ServeConfig:
    data_dir: Path
    workers: int = 2
    policy: str = "deadline"
    ingest: IngestOptions = field(default_factory=IngestOptions)
    cache_bytes: int | None = 20 * 1024**3
    segment_wait_s: float = 20.0  # a request for a segment not yet rendered waits this long
    lease_s: float = 30.0
    tick_s: float = 0.25  # replanning period: deadlines move with the clock
    inferred_session_ttl_s: float = 10.0
    batch_size: int = 8
    # deadline policy: workers after the first only take playing work due within this long,
    # so a seek rarely waits for a whole far-ahead segment to finish
    headroom_s: float = 6.0
