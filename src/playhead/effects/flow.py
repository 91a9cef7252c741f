"""``flow``: dense optical flow between consecutive frames (OpenCV DIS)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal, cast

import cv2
import numpy as np
from pydantic import Field

from playhead.effects.base import Band, Bands, Context, EffectParams, Frames

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class FlowParams(EffectParams):
    preset: Literal["ultrafast", "fast", "medium"] = Field(
        "fast", description="DIS preset: speed against accuracy"
    )
    max_magnitude: float = Field(
        4.0, gt=0, le=1000, description="motion (pixels/frame) shown at full brightness"
    )


class FlowRunner:
    def run(self, frames: Frames, params: EffectParams, context: Context) -> Bands:
        p = cast(FlowParams, params)
        dis = cv2.DISOpticalFlow_create(PRESETS[p.preset])  # type: ignore[attr-defined]
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        # the frame before the batch comes from the context, decoded by this segment itself
        prev = (
            cv2.cvtColor(context.previous[-1], cv2.COLOR_RGB2GRAY)
            if len(context.previous)
            else None
        )
        h, w = frames.shape[1:3]
        flows = np.zeros((len(frames), h, w, 2), np.float32)
        for j, g in enumerate(gray):
            if prev is not None:
                flows[j] = dis.calc(prev, g, None)
            prev = g
        return {"flow": flows, "rgb": visualise(flows, p.max_magnitude)}

    def composite(self, frames: Frames, bands: Bands, params: EffectParams) -> Frames:
        return cast(Frames, bands["rgb"])


def visualise(flows: np.ndarray, max_magnitude: float) -> Frames:
    """The usual HSV picture of flow: hue = direction, brightness = speed."""
    out = np.empty((*flows.shape[:3], 3), np.uint8)
    for j, f in enumerate(flows):
        mag, ang = cv2.cartToPolar(f[..., 0], f[..., 1], angleInDegrees=True)
        hsv = np.empty((*f.shape[:2], 3), np.uint8)
        hsv[..., 0] = (ang / 2).astype(np.uint8)
        hsv[..., 1] = 255
        hsv[..., 2] = np.clip(mag / max_magnitude * 255, 0, 255).astype(np.uint8)
        out[j] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


class Flow:
    """Motion between frames. Needs one frame of context: segment k decodes frame kS-1 itself."""

    name: ClassVar[str] = "flow"
    version: ClassVar[str] = "1"
    Params: ClassVar[type[EffectParams]] = FlowParams
    bands: ClassVar[tuple[Band, ...]] = ("flow", "rgb")
    context_frames: ClassVar[int] = 1
    devices: ClassVar[tuple[str, ...]] = ("cpu",)  # OpenCV / numpy on the host
    batch_sizes: ClassVar[Mapping[str, int]] = {"cpu": 8}

    def load(self) -> FlowRunner:
        return FlowRunner()
