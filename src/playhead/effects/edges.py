"""``edges``: Canny edge stylisation (OpenCV)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal, Self, cast

import cv2
import numpy as np
from pydantic import Field, model_validator

from playhead.effects.base import Band, Bands, Context, EffectParams, Frames
from playhead.effects.colors import HexColor, rgb


class EdgesParams(EffectParams):
    low: float = Field(80, ge=0, le=1000, description="Canny lower hysteresis threshold")
    high: float = Field(160, ge=0, le=1000, description="Canny upper hysteresis threshold")
    color: HexColor = Field("#ffffff", description="colour of the lines")
    background: Literal["black", "source", "dim"] = Field(
        "black", description="what lies under the lines: black, the source, or the source dimmed"
    )
    thickness: int = Field(1, ge=1, le=9, description="line thickness in pixels")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be at least low ({self.low})")
        return self


class EdgesRunner:
    def run(self, frames: Frames, params: EffectParams, context: Context) -> Bands:
        p = cast(EdgesParams, params)
        kernel = np.ones((p.thickness, p.thickness), np.uint8)
        mattes = []
        for f in frames:
            edges = cv2.Canny(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), p.low, p.high)
            mattes.append(cv2.dilate(edges, kernel) if p.thickness > 1 else edges)
        matte = np.stack(mattes)
        a = matte[..., None].astype(np.float32) / 255
        if p.background == "black":
            under = np.zeros(frames.shape, np.float32)
        else:
            under = frames.astype(np.float32) * (0.35 if p.background == "dim" else 1.0)
        out = under * (1 - a) + np.array(rgb(p.color), np.float32) * a
        return {"rgb": (out + 0.5).astype(np.uint8), "matte": matte}

    def composite(self, frames: Frames, bands: Bands, params: EffectParams) -> Frames:
        return cast(Frames, bands["rgb"])


class Edges:
    """Line-drawing look from Canny edges; the lines are also a matte for alpha exports."""

    name: ClassVar[str] = "edges"
    version: ClassVar[str] = "1"
    Params: ClassVar[type[EffectParams]] = EdgesParams
    bands: ClassVar[tuple[Band, ...]] = ("rgb", "matte")
    context_frames: ClassVar[int] = 0
    devices: ClassVar[tuple[str, ...]] = ("cpu",)  # OpenCV / numpy on the host
    batch_sizes: ClassVar[Mapping[str, int]] = {"cpu": 8}

    def load(self) -> EdgesRunner:
        return EdgesRunner()
