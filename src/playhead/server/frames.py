"""Single processed frames, for scrubbing while paused.

A frame is rendered directly (decode one frame plus its context, run the effect on it) rather
than waiting for its whole segment: that answers in tens of milliseconds, and keeps the
workers on the segments the playing viewers need.
"""

from __future__ import annotations

import numpy as np

from playhead.catalog import Catalog
from playhead.renders import Render
from playhead.types import FrameRange
from playhead.worker.segment_job import PipelineCache


class FrameService:
    def __init__(self, catalog: Catalog, capacity: int = 8) -> None:
        # one cache, lent to one request at a time: models and decoders are not re-entrant
        self._pipelines = PipelineCache(catalog, batch_size=1, capacity=capacity)

    def render_frame(self, render: Render, n: int, variant: str) -> np.ndarray:
        with self._pipelines.use(render) as pipeline:
            result = pipeline.run(*pipeline.decode_range(FrameRange(n, n + 1)))
        image: np.ndarray = result.stacked() if variant == "stacked" else result.composite
        first: np.ndarray = image[0]
        return first

    def forget_asset(self, asset_id: str) -> None:
        self._pipelines.forget_asset(asset_id)

    def close(self) -> None:
        self._pipelines.close()
