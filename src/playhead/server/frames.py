"""Single processed frames, for scrubbing while paused.

A frame is rendered directly (decode one frame plus its context, run the effect on it) rather
than waiting for its whole segment: that answers in tens of milliseconds, and keeps the
workers on the segments the playing viewers need.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from playhead.effects import registry
from playhead.effects.base import Context, Runner
from playhead.media.decode import MezzanineReader
from playhead.pipeline import SegmentResult
from playhead.renders import Render
from playhead.server.catalog import Catalog
from playhead.types import FrameRange


class FrameService:
    def __init__(self, catalog: Catalog, data_dir: Path) -> None:
        self.catalog = catalog
        self.data_dir = data_dir
        self._runners: dict[str, Runner] = {}
        self._readers: dict[str, MezzanineReader] = {}
        self._lock = threading.Lock()  # runners and readers are not re-entrant

    def render_frame(self, render: Render, n: int, variant: str) -> np.ndarray:
        effect = registry.get(render.effect)
        params = render.effect_params()
        adir = self.catalog.asset_dir(render.asset)
        with self._lock:
            if effect.name not in self._runners:
                self._runners[effect.name] = effect.load()
            runner = self._runners[effect.name]
            if render.asset not in self._readers:
                self._readers[render.asset] = MezzanineReader(adir.mezzanine, adir.load()[1])
            lead = min(effect.context_frames, n)
            frames = self._readers[render.asset].read(FrameRange(n - lead, n + 1))
            asset = self.catalog.asset(render.asset)
            ctx = Context(first_frame=n, fps=float(asset.fps), previous=frames[:lead])
            source = frames[lead:]
            bands = runner.run(source, params, ctx)
            result = SegmentResult(
                FrameRange(n, n + 1), source, bands, runner.composite(source, bands, params)
            )
        image: np.ndarray = result.stacked() if variant == "stacked" else result.composite
        first: np.ndarray = image[0]
        return first
