"""``onnx``: bring your own ONNX image model (onnxruntime on the process's device: CPU, CUDA)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, cast

import cv2
import numpy as np
import onnxruntime as ort
from pydantic import Field, field_validator

from playhead.effects import devices
from playhead.effects.base import Band, Bands, Context, EffectParams, Frames
from playhead.effects.person import background_field, composite_matte


class OnnxParams(EffectParams):
    model: str = Field(description="path of the .onnx file")
    output: Literal["matte", "rgb"] = Field(
        "matte", description="what the first output is: a matte (1 channel) or an image (3)"
    )
    input_width: int | None = Field(
        None, ge=8, le=4096, description="model input width (default: from the model)"
    )
    input_height: int | None = Field(
        None, ge=8, le=4096, description="model input height (default: from the model)"
    )
    layout: Literal["nchw", "nhwc"] = Field("nchw", description="input tensor layout")
    mean: tuple[float, float, float] = Field(
        (0.0, 0.0, 0.0), description="per-channel mean subtracted from pixels scaled to 0..1"
    )
    std: tuple[float, float, float] = Field(
        (1.0, 1.0, 1.0), description="per-channel divisor after the mean"
    )
    activation: Literal["none", "sigmoid"] = Field(
        "none", description="applied to a matte output to get 0..1 (use sigmoid for logits)"
    )
    output_scale: Literal["unit", "byte"] = Field(
        "unit", description="range of an rgb output: 0..1 (unit) or 0..255 (byte)"
    )
    background: str = background_field("composite background for a matte output")

    @field_validator("model")
    @classmethod
    def _exists(cls, value: str) -> str:
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"no ONNX model at {value!r}")
        return str(path.resolve())

    @field_validator("std")
    @classmethod
    def _nonzero(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(v == 0 for v in value):
            raise ValueError("std values must be non-zero")
        return value


class OnnxRunner:
    def __init__(self) -> None:
        self._sessions: dict[tuple[str, float, str], ort.InferenceSession] = {}

    def _session(self, path: str) -> ort.InferenceSession:
        device = devices.current()
        key = (path, Path(path).stat().st_mtime, str(device))  # a re-exported model is reloaded
        if key not in self._sessions:
            self._sessions[key] = devices.onnx_session(path, device)
        return self._sessions[key]

    def run(self, frames: Frames, params: EffectParams, context: Context) -> Bands:
        p = cast(OnnxParams, params)
        session = self._session(p.model)
        spec = session.get_inputs()[0]
        shape: list[Any] = list(spec.shape)
        hw_axes = (2, 3) if p.layout == "nchw" else (1, 2)
        height = p.input_height or _static(shape[hw_axes[0]], "height")
        width = p.input_width or _static(shape[hw_axes[1]], "width")
        x = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])
        x = (x.astype(np.float32) / 255 - np.array(p.mean, np.float32)) / np.array(
            p.std, np.float32
        )
        if p.layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(x)
        if isinstance(shape[0], int):  # fixed batch: run frame by frame
            y = np.concatenate(
                [session.run(None, {spec.name: x[i : i + 1]})[0] for i in range(len(x))]
            )
        else:
            y = session.run(None, {spec.name: x})[0]
        h, w = frames.shape[1:3]
        return _matte(y, p, h, w) if p.output == "matte" else _rgb(y, p, h, w)

    def composite(self, frames: Frames, bands: Bands, params: EffectParams) -> Frames:
        p = cast(OnnxParams, params)
        if p.output == "rgb":
            return cast(Frames, bands["rgb"])
        return composite_matte(frames, bands["matte"], p.background)


def _static(dim: Any, what: str) -> int:
    if not isinstance(dim, int):
        raise ValueError(f"the model's input {what} is dynamic; set input_{what}")
    return dim


def _matte(y: np.ndarray, p: OnnxParams, h: int, w: int) -> Bands:
    y = y.reshape(len(y), *[d for d in y.shape[1:] if d != 1][-2:])  # [B,1,h,w] or [B,h,w,1]
    if p.activation == "sigmoid":
        y = 1 / (1 + np.exp(-y))
    m = np.clip(y * 255 + 0.5, 0, 255).astype(np.uint8)
    return {"matte": np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in m])}


def _rgb(y: np.ndarray, p: OnnxParams, h: int, w: int) -> Bands:
    if y.ndim != 4 or 3 not in (y.shape[1], y.shape[3]):
        raise ValueError(f"an rgb output must be [B,3,h,w] or [B,h,w,3], got {list(y.shape)}")
    if y.shape[1] == 3 and y.shape[3] != 3:
        y = y.transpose(0, 2, 3, 1)
    scale = 255.0 if p.output_scale == "unit" else 1.0
    img = np.clip(y * scale + 0.5, 0, 255).astype(np.uint8)
    return {"rgb": np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in img])}


class Onnx:
    """Run any ONNX image model that maps a picture to a matte or to a new picture."""

    name: ClassVar[str] = "onnx"
    version: ClassVar[str] = "1"
    Params: ClassVar[type[EffectParams]] = OnnxParams
    bands: ClassVar[tuple[Band, ...]] = ("rgb", "matte")
    context_frames: ClassVar[int] = 0
    # onnxruntime runs the model where the process's device is (devices.onnx_session): a GPU
    # takes bigger batches; the CPU keeps batches small so a segment's first frames come soon
    devices: ClassVar[tuple[str, ...]] = ("cuda", "cpu")
    batch_sizes: ClassVar[Mapping[str, int]] = {"cuda": 32, "cpu": 8}

    def load(self) -> OnnxRunner:
        return OnnxRunner()
