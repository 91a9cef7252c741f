"""The segment pipeline: decode → effect (batched) → bands → variants.

This is exactly what a worker runs for one job, and what ``playhead render`` runs for every
segment. A segment decodes its own temporal context (the frames before it that the effect
declares it needs), so any worker can render any segment without waiting for another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from playhead.effects import devices
from playhead.effects.base import (
    Bands,
    Context,
    Effect,
    EffectParams,
    Frames,
    Runner,
    anchor_frames,
)
from playhead.errors import PlayheadError
from playhead.media.asset import Asset, AssetDir
from playhead.media.decode import MezzanineReader
from playhead.types import FrameRange


class Interrupted(PlayheadError, RuntimeError):
    """The render was asked to stop between batches (its job is no longer wanted)."""

    status = 409
    code = "interrupted"


@dataclass(frozen=True)
class SegmentResult:
    frames: FrameRange
    source: Frames
    bands: Bands
    composite: Frames

    @property
    def matte(self) -> np.ndarray | None:
        return self.bands.get("matte")

    @property
    def colour(self) -> Frames:
        """Colour under an alpha channel: the effect's image if it makes one, else the source."""
        rgb: Frames = self.bands.get("rgb", self.source)
        return rgb

    def stacked(self) -> Frames:
        """Colour on top, matte below as luma: the browser composites any background over it."""
        matte = self.matte
        if matte is None:
            matte = np.full(self.source.shape[:3], 255, np.uint8)
        return np.concatenate([self.colour, np.repeat(matte[..., None], 3, axis=3)], axis=1)


class SegmentPipeline:
    """Renders segments of one (asset, effect, params). Holds a warm reader; not thread-safe."""

    def __init__(
        self,
        asset: Asset,
        asset_dir: AssetDir,
        effect: Effect,
        runner: Runner,
        params: EffectParams,
        batch_size: int | None = None,
    ) -> None:
        """``batch_size``: frames per effect batch; None = what the effect prefers on this
        process's device (`devices.preferred_batch`)."""
        self.asset = asset
        self.effect = effect
        self.runner = runner
        self.params = params
        if batch_size is None:
            batch_size = devices.preferred_batch(effect, devices.current().klass)
        self.batch_size = max(1, batch_size)
        _, index = asset_dir.load()
        self._reader = MezzanineReader(asset_dir.mezzanine, index)
        self._anchors: dict[int, np.ndarray] = {}  # neighbouring segments share their anchors

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> SegmentPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def decode(self, k: int) -> tuple[FrameRange, Frames, Frames]:
        """Frames of segment ``k`` and the context frames the effect needs before them."""
        return self.decode_range(self.asset.segment_range(k))

    def decode_range(self, frames: FrameRange) -> tuple[FrameRange, Frames, Frames]:
        """Any frames (a segment, or one frame for scrubbing) and the context before them."""
        lead = min(self.effect.context_frames, frames.start)
        both = self._reader.read(FrameRange(frames.start - lead, frames.stop))
        return frames, both[lead:], both[:lead]

    def run(
        self,
        frames: FrameRange,
        source: Frames,
        context: Frames,
        should_stop: Callable[[], bool] | None = None,
    ) -> SegmentResult:
        """Run the effect over a decoded segment in batches, then build the composite.

        ``should_stop`` is asked before every batch; when it says yes the render stops there
        with `Interrupted` (a cooperative cancel: a batch is never cut in half).
        """
        c = self.effect.context_frames
        parts: list[Bands] = []
        carry: dict[str, Any] = {}  # one segment's scratch space: never another segment's
        anchors = self._read_anchors(frames, source)
        for j in range(0, len(source), self.batch_size):
            if should_stop is not None and should_stop():
                raise Interrupted(f"segment at frame {frames.start} interrupted at batch {j}")
            batch = source[j : j + self.batch_size]
            previous = source[max(0, j - c) : j]
            if len(previous) < c and len(context):  # the batch starts the segment
                previous = np.concatenate([context[len(context) - (c - len(previous)) :], previous])
            ctx = Context(
                first_frame=frames.start + j,
                fps=float(self.asset.fps),
                previous=previous,
                carry=carry,
                anchors=anchors,
            )
            parts.append(self.runner.run(batch, self.params, ctx))
        bands = _concat(parts)
        composite = self.runner.composite(source, bands, self.params)
        return SegmentResult(frames, source, bands, composite)

    def _read_anchors(self, frames: FrameRange, source: Frames) -> dict[int, np.ndarray]:
        """The frames the effect names for this range, decoded here (inside it: from it)."""
        wanted = anchor_frames(self.effect, self.params, frames)
        out: dict[int, np.ndarray] = {}
        for n in wanted:
            if frames.start <= n < frames.stop:
                out[n] = source[n - frames.start]
            else:
                if n not in self._anchors:
                    self._anchors[n] = self._reader.read(FrameRange(n, n + 1))[0]
                out[n] = self._anchors[n]
        for n in [n for n in self._anchors if n not in wanted]:
            del self._anchors[n]  # keep only the current segment's: they are whole frames
        return out

    def render(self, k: int, should_stop: Callable[[], bool] | None = None) -> SegmentResult:
        return self.run(*self.decode(k), should_stop=should_stop)


def _concat(parts: list[Bands]) -> Bands:
    out: Bands = {}
    for name in parts[0]:
        values: list[Any] = [p[name] for p in parts]
        if isinstance(values[0], np.ndarray):
            out[name] = np.concatenate(values)
        else:
            out[name] = [item for v in values for item in v]
    return out
