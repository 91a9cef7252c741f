"""``person``: MediaPipe selfie segmentation → a matte of the people in the frame."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, cast

import cv2
import numpy as np
from pydantic import Field

from playhead.effects import models
from playhead.effects.base import Band, Bands, Context, EffectParams, Frames
from playhead.effects.colors import rgb
from playhead.effects.tflite import TFLiteModel

GREEN = (0, 177, 64)  # chroma-key green


def background_field(
    description: str = "composite background: green, blur, transparent, none or #rrggbb",
) -> Any:
    """The ``background`` parameter of every effect composited by `composite_matte`."""
    return Field(
        "green", pattern=r"^(green|blur|transparent|none|#[0-9a-fA-F]{6})$", description=description
    )


class PersonParams(EffectParams):
    model: Literal["general", "landscape"] = Field(
        "general", description="general: 256x256, most accurate; landscape: 144x256, faster"
    )
    threshold: float = Field(0.5, ge=0, le=1, description="probability that counts as person")
    softness: float = Field(
        0.1, ge=0, le=0.5, description="width of the soft edge around the threshold"
    )
    feather: float = Field(2.0, ge=0, le=50, description="blur of the matte edge, in pixels")
    smoothing: float = Field(
        0.0, ge=0, le=0.9, description="temporal smoothing with the previous frame (0 = off)"
    )
    background: str = background_field()


class PersonRunner:
    def __init__(self) -> None:
        self._models: dict[str, TFLiteModel] = {}

    def _model(self, name: str) -> TFLiteModel:
        if name not in self._models:
            weights = (
                "selfie_segmentation" if name == "general" else "selfie_segmentation_landscape"
            )
            self._models[name] = TFLiteModel(models.weights_path(weights))
        return self._models[name]

    def probabilities(self, frames: Frames, model_name: str) -> np.ndarray:
        """Person probability per pixel, ``float32[B,h,w]`` at the model's resolution."""
        model = self._model(model_name)
        mh, mw = model.input_hw
        batch = np.stack([cv2.resize(f, (mw, mh), interpolation=cv2.INTER_AREA) for f in frames])
        (out,) = model(batch.astype(np.float32) / 255.0)[:1]
        return np.asarray(out, np.float32).reshape(len(frames), mh, mw)

    def run(self, frames: Frames, params: EffectParams, context: Context) -> Bands:
        p = cast(PersonParams, params)
        probs = self.probabilities(frames, p.model)
        if p.smoothing > 0:
            prev = self._previous(context, p.model)
            if prev is not None:
                chain = np.concatenate([prev[None], probs])
                probs = (1 - p.smoothing) * chain[1:] + p.smoothing * chain[:-1]
        # the last frame's raw probability, for the next batch of this segment: smoothing
        # across batches does not run the model twice on the frame before each batch
        context.carry["person"] = (context.first_frame + len(frames) - 1, p.model, probs[-1])
        # threshold at the model's resolution (cheap), then upsample the uint8 matte
        lo, hi = p.threshold - p.softness, p.threshold + p.softness
        alpha = np.clip((probs - lo) / max(hi - lo, 1e-6), 0, 1)
        small = (alpha * 255 + 0.5).astype(np.uint8)
        h, w = frames.shape[1:3]
        matte = np.empty((len(frames), h, w), np.uint8)
        for j, m in enumerate(small):
            matte[j] = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
            if p.feather > 0:
                cv2.GaussianBlur(matte[j], (0, 0), p.feather, dst=matte[j])
        return {"matte": matte}

    def _previous(self, context: Context, model_name: str) -> np.ndarray | None:
        if len(context.previous) == 0:
            return None
        last = context.carry.get("person")
        if last is not None and last[0] == context.first_frame - 1 and last[1] == model_name:
            kept: np.ndarray = last[2]
            return kept
        prev: np.ndarray = self.probabilities(context.previous[-1:], model_name)[0]
        return prev

    def composite(self, frames: Frames, bands: Bands, params: EffectParams) -> Frames:
        return composite_matte(frames, bands["matte"], cast(PersonParams, params).background)


def composite_matte(frames: Frames, matte: np.ndarray, background: str) -> Frames:
    """Replace what the matte excludes by ``background`` (green, blur, transparent, none, #hex).

    ``transparent`` premultiplies (black where the matte is 0): a flat video has no alpha; the
    alpha exports and the browser's ``stacked`` view carry the matte itself.
    """
    if background == "none":
        return frames
    h, w = frames.shape[1:3]
    flat: np.ndarray | None = None
    if background not in ("blur", "transparent"):
        color = GREEN if background == "green" else rgb(background)
        flat = np.empty((h, w, 3), np.uint8)
        flat[:] = color
    elif background == "transparent":
        flat = np.zeros((h, w, 3), np.uint8)
    out = np.empty_like(frames)
    for j, frame in enumerate(frames):
        a = matte[j].astype(np.float32) * (1 / 255)
        bg = flat if flat is not None else cv2.GaussianBlur(frame, (0, 0), max(h, w) / 40)
        # OpenCV's per-pixel blend: an order of magnitude faster than numpy float maths
        out[j] = cv2.blendLinear(frame, bg, a, 1 - a)
    return out


class Person:
    """Separate people from the background (MediaPipe selfie segmentation, on the CPU)."""

    name: ClassVar[str] = "person"
    version: ClassVar[str] = "1"
    Params: ClassVar[type[EffectParams]] = PersonParams
    bands: ClassVar[tuple[Band, ...]] = ("matte",)
    context_frames: ClassVar[int] = 1
    # LiteRT on the CPU only: the ai-edge-litert wheel ships no GPU delegate for Linux (only a
    # WebGPU accelerator for its CompiledModel API), and the model is tiny (≈250 KB, 256x256
    # input, a few ms a frame on one core), so copies to and from a GPU would eat the gain. On a
    # cuda worker it runs on the host's cores; `devices.litert_delegates` still uses a GPU
    # delegate if one is installed (PLAYHEAD_LITERT_GPU_DELEGATE), without routing relying on it.
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    batch_sizes: ClassVar[Mapping[str, int]] = {"cpu": 8}

    def load(self) -> PersonRunner:
        return PersonRunner()
