"""``roto``: rotoscoping — the subject you clicked on, cut out through the whole video.

The params name annotated frames and their clicks (include / exclude points, a box), in
mezzanine pixels. On an annotated frame the mask is SAM's answer to the clicks, the same mask
the editor showed when they were made. Every other frame takes its mask from the nearer
annotated frame (before or after it), carried there by `tracking.Tracker`: optical flow on
every frame, SAM re-segmenting every ``every``-th frame.

Segments are independent, so a viewer who seeks far from any annotated frame waits for one
segment, never for a chain: a segment whose nearest annotated frame lies outside it finds the
subject afresh on a few of its own frames by the appearance memory of the annotated frames
(`tracking.redetect`), then tracks from the frame where it matched best. So segment k
depends only on the clicks on the annotated frames that are nearest to one of its frames
(`relevant`): `segment_params` says so, and a click on any other frame leaves it cached.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from playhead.effects.base import Band, Bands, Context, EffectParams, Frames
from playhead.effects.person import background_field, composite_matte
from playhead.effects.sam import Embedding, Point, Sam
from playhead.effects.tracking import Mask, Memory, Tracker
from playhead.errors import InvalidParamsError
from playhead.types import FrameRange


class Click(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    x: float = Field(description="frame pixels, from the left")
    y: float = Field(description="frame pixels, from the top")
    label: int = Field(1, ge=0, le=1, description="1: part of the subject, 0: not")


class Prompt(BaseModel):
    """The clicks (and box) on one annotated frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    frame: int = Field(ge=0, description="the annotated frame (mezzanine frame index)")
    points: tuple[Click, ...] = Field((), max_length=64)
    box: tuple[float, float, float, float] | None = Field(
        None, description="[x0, y0, x1, y1] in frame pixels: the subject is inside"
    )

    @model_validator(mode="after")
    def _says_something(self) -> Prompt:
        if self.box is None and not any(p.label == 1 for p in self.points):
            raise ValueError(f"frame {self.frame}: give an include point (label 1) or a box")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not (x0 < x1 and y0 < y1):
                raise ValueError(f"frame {self.frame}: the box needs x0 < x1 and y0 < y1")
        return self


class RotoParams(EffectParams):
    prompts: tuple[Prompt, ...] = Field(
        min_length=1,
        max_length=256,
        description="annotated frames and their clicks; one entry per frame",
    )
    every: int = Field(
        4,
        ge=1,
        le=30,
        description="re-segment every n-th frame, optical flow in between (1: best, slowest)",
    )
    feather: float = Field(1.5, ge=0, le=50, description="blur of the matte edge, in pixels")
    background: str = background_field()

    @field_validator("prompts")
    @classmethod
    def _one_per_frame(cls, prompts: tuple[Prompt, ...]) -> tuple[Prompt, ...]:
        frames = [p.frame for p in prompts]
        if len(set(frames)) != len(frames):
            twice = sorted({f for f in frames if frames.count(f) > 1})
            raise ValueError(f"frames {twice} are annotated more than once: merge their clicks")
        # canonical order, so that the same clicks make the same render whatever their order
        return tuple(sorted(prompts, key=lambda p: p.frame))


def nearest(prompts: Sequence[Prompt], frame: int) -> Prompt:
    """The annotated frame whose mask ``frame`` takes: the nearer one, the earlier on a tie."""
    return min(prompts, key=lambda p: (abs(p.frame - frame), p.frame))


def relevant(prompts: Sequence[Prompt], frames: FrameRange) -> tuple[Prompt, ...]:
    """The annotated frames segment ``frames`` reads: those nearest to one of its frames (from
    the one nearest to its first frame to the one nearest to its last, since `nearest` never
    goes back as the frame moves on). Any other annotated frame is farther from every frame
    of the segment, so its clicks cannot change the segment's masks."""
    first = nearest(prompts, frames.start).frame
    last = nearest(prompts, frames.stop - 1).frame
    return tuple(p for p in prompts if first <= p.frame <= last)


class RotoRunner:
    def __init__(self, sam: Sam | None = None) -> None:
        """``sam``: models already loaded (a benchmark's fresh runners share them)."""
        self._sam = sam
        # embeddings by frame content (a pure cache): anchors recur in every nearby segment
        self._embeddings: OrderedDict[bytes, Embedding] = OrderedDict()

    @property
    def sam(self) -> Sam:
        if self._sam is None:
            self._sam = Sam()
        return self._sam

    def embed(self, frame: np.ndarray) -> Embedding:
        """The frame's embedding, rounded to float16 as the mask endpoint stores it, so an
        annotated frame's mask here is the mask the editor showed for the same clicks."""
        key = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest()
        if key not in self._embeddings:
            embedding = self.sam.embed(frame).astype(np.float16).astype(np.float32)
            self._embeddings[key] = embedding
            while len(self._embeddings) > 8:
                self._embeddings.popitem(last=False)
        self._embeddings.move_to_end(key)
        return self._embeddings[key]

    def clicked(self, frame: np.ndarray, prompt: Prompt) -> Mask:
        points = [Point(c.x, c.y, c.label) for c in prompt.points]
        seg = self.sam.segment(self.embed(frame), frame.shape[:2], points, box=prompt.box)
        return seg.mask > 0

    def run(self, frames: Frames, params: EffectParams, context: Context) -> Bands:
        p = cast(RotoParams, params)
        span = FrameRange(context.first_frame, context.first_frame + len(frames))
        masks = self.masks(frames, span, relevant(p.prompts, span), context.anchors, p.every)
        matte = np.where(masks, 255, 0).astype(np.uint8)
        if p.feather > 0:
            for j in range(len(matte)):
                cv2.GaussianBlur(matte[j], (0, 0), p.feather, dst=matte[j])
        return {"matte": matte}

    def masks(
        self,
        frames: Frames,
        span: FrameRange,
        prompts: Sequence[Prompt],
        anchors: Mapping[int, np.ndarray],
        every: int,
    ) -> np.ndarray:
        """``bool[B, H, W]``: each frame's mask, tracked from its nearest annotated frame."""
        clicked = {q.frame: self.clicked(anchors[q.frame], q) for q in prompts}
        memory = Memory.build([(anchors[n], self.embed(anchors[n]), m) for n, m in clicked.items()])
        tracker = Tracker(self.sam, self.embed, memory)
        out = np.zeros(frames.shape[:3], bool)
        # frames grouped into runs by the annotated frame they take their mask from
        source = [nearest(prompts, n).frame - span.start for n in range(span.start, span.stop)]
        j = 0
        while j < len(frames):
            end = j
            while end < len(frames) and source[end] == source[j]:
                end += 1
            origin = source[j]
            mask = clicked.get(origin + span.start)
            self._run(frames, out, j, end, origin, mask, tracker, every)
            j = end
        return out

    def _run(
        self,
        frames: Frames,
        out: np.ndarray,
        lo: int,
        hi: int,
        origin: int,
        clicked: Mask | None,
        tracker: Tracker,
        every: int,
    ) -> None:
        """Fill ``out[lo:hi]``, whose nearest annotated frame is batch index ``origin``
        (outside the batch when it lies in another segment) with mask ``clicked``."""
        if lo <= origin < hi and clicked is not None:  # from the annotated frame, both ways
            out[origin] = clicked
            self._chain(frames, out, origin, hi, +1, tracker, every)
            self._chain(frames, out, origin, lo - 1, -1, tracker, every)
            return
        # the annotated frame is in another segment: find the subject afresh on a few frames
        # of the run (SAM's frames, so their embeddings serve the tracking too), and track
        # both ways from the one where it matches the memory best (one blurred or occluded
        # frame does not lose the whole run)
        grid = list(range(lo, hi, every)) if origin < lo else list(range(hi - 1, lo - 1, -every))
        tries = [grid[round(i * (len(grid) - 1) / 2)] for i in range(3)] if len(grid) > 2 else grid
        found = {n: tracker.find(frames[n]) for n in dict.fromkeys(tries)}
        start = max(found, key=lambda n: (tracker.score(frames[n], found[n]), -abs(n - origin)))
        out[start] = found[start]
        self._chain(frames, out, start, hi, +1, tracker, every)
        self._chain(frames, out, start, lo - 1, -1, tracker, every)

    def _chain(
        self,
        frames: Frames,
        out: np.ndarray,
        start: int,
        stop: int,
        step: int,
        tracker: Tracker,
        every: int,
    ) -> None:
        """Track from ``out[start]`` to each frame up to (not including) ``stop``."""
        for i in range(start + step, stop, step):
            resegment = abs(i - start) % every == 0
            out[i] = tracker.step(frames[i - step], out[i - step], frames[i], resegment)

    def composite(self, frames: Frames, bands: Bands, params: EffectParams) -> Frames:
        return composite_matte(frames, bands["matte"], cast(RotoParams, params).background)


class Roto:
    """Rotoscoping: click on anything, and it is cut out through the whole video."""

    name: ClassVar[str] = "roto"
    version: ClassVar[str] = "1"
    Params: ClassVar[type[EffectParams]] = RotoParams
    bands: ClassVar[tuple[Band, ...]] = ("matte",)
    context_frames: ClassVar[int] = 0
    devices: ClassVar[tuple[str, ...]] = ("cuda", "cpu")  # the SAM encoder gains from a GPU
    # one batch per segment: tracking runs both ways from an annotated frame inside it
    batch_sizes: ClassVar[Mapping[str, int]] = {"cuda": 1024, "cpu": 1024}

    def load(self) -> RotoRunner:
        return RotoRunner()

    def anchor_frames(self, params: EffectParams, frames: FrameRange) -> list[int]:
        return [q.frame for q in relevant(cast(RotoParams, params).prompts, frames)]

    def segment_params(self, params: EffectParams, frames: FrameRange) -> dict[str, Any]:
        p = cast(RotoParams, params)
        part = p.model_dump(mode="json")
        part["prompts"] = [q.model_dump(mode="json") for q in relevant(p.prompts, frames)]
        return part

    def check_params(self, params: EffectParams, width: int, height: int, frames: int) -> None:
        for q in cast(RotoParams, params).prompts:
            if q.frame >= frames:
                raise InvalidParamsError(
                    f"roto: prompt frame {q.frame} is past the last frame ({frames - 1})"
                )
            for c in q.points:
                if not (0 <= c.x < width and 0 <= c.y < height):
                    raise InvalidParamsError(
                        f"roto: point ({c.x}, {c.y}) on frame {q.frame} is outside the "
                        f"{width}x{height} frame"
                    )
            if q.box is not None:
                x0, y0, x1, y1 = q.box
                if min(x0, y0) < 0 or x1 > width or y1 > height:
                    raise InvalidParamsError(
                        f"roto: box {list(q.box)} on frame {q.frame} is outside the "
                        f"{width}x{height} frame"
                    )
