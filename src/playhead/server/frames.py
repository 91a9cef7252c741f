"""Single processed frames, for scrubbing while paused.

A frame is rendered directly (decode one frame plus its context, run the effect on it) rather
than waiting for its whole segment: that answers in tens of milliseconds, and keeps the
workers on the segments the playing viewers need.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from playhead.renders import Render
from playhead.types import FrameRange
from playhead.worker.segment_job import PipelineCache


class FrameService:
    def __init__(self, data_dir: Path) -> None:
        self._pipelines = PipelineCache(data_dir, batch_size=1)
        self._lock = threading.Lock()  # pipelines are not re-entrant

    def render_frame(self, render: Render, n: int, variant: str) -> np.ndarray:
        pipeline = self._pipelines.get(render)
        with self._lock:
            result = pipeline.run(*pipeline.decode_range(FrameRange(n, n + 1)))
        image: np.ndarray = result.stacked() if variant == "stacked" else result.composite
        first: np.ndarray = image[0]
        return first
