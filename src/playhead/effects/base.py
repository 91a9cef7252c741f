"""The effect plug-in interface.

An effect is a named, versioned model with a strict parameter schema. `load()` returns a
runner holding the warm model; the runner's `run` is batched: frames ``uint8[B,H,W,3]`` (RGB)
in, bands out. Effects are pure: no I/O beyond loading their weights.

A complete example, an effect that inverts colours::

    class InvertParams(EffectParams):
        amount: float = Field(1.0, ge=0, le=1, description="0 = unchanged, 1 = fully inverted")

    class InvertRunner:
        def run(self, frames, params, context):
            p = cast(InvertParams, params)
            out = frames * (1 - p.amount) + (255 - frames) * p.amount
            return {"rgb": out.astype(np.uint8)}

        def composite(self, frames, bands, params):
            return bands["rgb"]

    class Invert:
        name, version = "invert", "1"
        Params = InvertParams
        bands = ("rgb",)
        context_frames = 0
        devices = ("cpu",)  # optional: where it runs, best first (see below)
        batch_sizes = {"cpu": 8}  # optional: frames per batch on each device class
        def load(self): return InvertRunner()

``devices`` and ``batch_sizes`` are optional (`playhead.effects.devices` reads them with
defaults): ``devices`` lists the device classes (``"cpu"``, ``"cuda"``) on which the effect
gains from the hardware, best first, default ``("cpu",)``; ``batch_sizes`` maps a device class
to the batch it prefers there, default 8. A model loaded with
``playhead.effects.devices.onnx_session(path)`` runs on the process's device (the GPU on a cuda
worker), so an ONNX effect declares ``devices = ("cuda", "cpu")``.

Register it in your package's ``pyproject.toml``::

    [project.entry-points."playhead.effects"]
    invert = "my_package:Invert"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from playhead.types import FrameRange

Band = Literal["rgb", "matte", "flow", "boxes"]
Variant = Literal["composite", "stacked"]

Frames = npt.NDArray[np.uint8]
"""A batch of RGB frames, ``uint8[B, H, W, 3]``."""

Bands = dict[str, Any]
"""Per-frame outputs of one batch, keyed by band name:

- ``rgb``: ``uint8[B,H,W,3]`` processed image
- ``matte``: ``uint8[B,H,W]`` alpha, 255 = foreground
- ``flow``: ``float32[B,H,W,2]`` pixel displacement from the previous frame (dx, dy)
- ``boxes``: ``list[list[dict]]``, per frame a list of ``{x0, y0, x1, y1, score}`` in pixels
"""


class EffectParams(BaseModel):
    """Base of every parameter schema: unknown names are errors, and so are wrong types."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


@dataclass(frozen=True)
class Context:
    """What a runner may know besides the batch itself.

    ``previous`` holds up to ``context_frames`` source frames immediately before ``frames[0]``
    (fewer at the start of the video), decoded by the pipeline itself so that a segment never
    depends on another segment's result.

    ``carry`` is scratch space shared by the batches of one segment, and only by them: a fresh
    dict for every segment, so a runner may keep what a batch computed for the next one (the
    last frame's model output, say) without its results depending on which jobs it ran before.
    A runner must keep no such state of its own: results are pure functions of their cache key.

    ``anchors`` holds the frames the effect's ``anchor_frames`` named for this segment (the
    annotated frames a tracker starts from), each ``uint8[H, W, 3]``, by frame index.
    """

    first_frame: int
    fps: float
    previous: Frames = field(default_factory=lambda: np.zeros((0, 0, 0, 3), np.uint8))
    carry: dict[str, Any] = field(default_factory=dict)
    anchors: Mapping[int, np.ndarray] = field(default_factory=dict)


class Runner(Protocol):
    """A loaded effect: warm model state, reused for every batch of every segment."""

    def run(self, frames: Frames, params: EffectParams, context: Context) -> Bands: ...

    def composite(self, frames: Frames, bands: Bands, params: EffectParams) -> Frames:
        """The effect baked into RGB frames (the ``composite`` variant and ``mp4`` export)."""
        ...


class Effect(Protocol):
    """A named, versioned model: what a plug-in's entry point returns an instance of.

    Optional attributes, not part of the protocol so that plug-ins without them still conform
    (read them with `playhead.effects.devices.effect_devices` and ``preferred_batch``):

    - ``devices: ClassVar[tuple[str, ...]]`` device classes the effect can use, best first
      (default ``("cpu",)``);
    - ``batch_sizes: ClassVar[Mapping[str, int]]`` preferred frames per batch by device class
      (default 8).

    and three optional methods for effects whose parameters name frames (read them with
    `anchor_frames`, `segment_params` and `check_params`):

    - ``anchor_frames(params, frames) -> Sequence[int]``: frames outside the segment ``frames``
      that its render needs (they reach the runner as ``Context.anchors``);
    - ``segment_params(params, frames) -> dict``: the part of the canonical params that segment
      ``frames`` depends on. Segments whose part did not change keep their cache entry when the
      params change (a click on frame t re-renders only the segments near t);
    - ``check_params(params, width, height, frames) -> None``: raise `InvalidParamsError` for
      params that do not fit the asset (a frame past its end, a point outside the picture).
    """

    name: ClassVar[str]
    version: ClassVar[str]
    Params: ClassVar[type[EffectParams]]
    bands: ClassVar[tuple[Band, ...]]
    context_frames: ClassVar[int]
    """How many previous source frames `run` needs (0 for per-frame effects)."""

    def load(self) -> Runner: ...


def variants_of(effect: Effect) -> tuple[Variant, ...]:
    """Every effect has a composite; one with a matte also has the browser-compositing view."""
    return ("composite", "stacked") if "matte" in effect.bands else ("composite",)


def anchor_frames(effect: Effect, params: EffectParams, frames: FrameRange) -> tuple[int, ...]:
    """The frames besides ``frames`` (and its context) that the effect reads: usually none."""
    hook = getattr(effect, "anchor_frames", None)
    return tuple(sorted(set(hook(params, frames)))) if hook else ()


def segment_params(
    effect: Effect, params: EffectParams, frames: FrameRange
) -> dict[str, Any] | None:
    """What segment ``frames`` depends on, or None when it is all the params (most effects)."""
    hook = getattr(effect, "segment_params", None)
    return dict(hook(params, frames)) if hook else None


def check_params(
    effect: Effect, params: EffectParams, width: int, height: int, frames: int
) -> None:
    """Let the effect refuse params that do not fit an asset of this size."""
    hook = getattr(effect, "check_params", None)
    if hook:
        hook(params, width, height, frames)
