"""Face anonymisation: MediaPipe BlazeFace detection, then blur, pixelate or box each face.

We run MediaPipe's own ``.tflite`` detectors with ``ai-edge-litert`` and reproduce, in numpy,
the post-processing of its graphs (``face_detection_short_range.pbtxt`` and
``face_detection_full_range.pbtxt`` feeding ``face_detection.pbtxt``): letterboxed input,
``SsdAnchorsCalculator`` anchors, ``TensorsToDetectionsCalculator`` decoding and the WEIGHTED
``NonMaxSuppressionCalculator``. Without that exact decoding the raw regressors mean nothing.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import Field

from playhead.effects import models
from playhead.effects.base import Band, Bands, Context, EffectParams, Frames
from playhead.effects.tflite import interpreter

F32 = npt.NDArray[np.float32]
Box = dict[str, float]


class FacesParams(EffectParams):
    """How faces are found and hidden."""

    model: Literal["short", "full"] = Field(
        default="short",
        description="short: 128x128 model for faces within ~2 m of the camera (selfies, calls); "
        "full: 192x192 sparse model that also finds smaller, farther faces",
    )
    mode: Literal["blur", "pixelate", "box"] = Field(
        default="blur", description="blur, pixelate or cover each face with an opaque black box"
    )
    strength: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="blur radius / pixel block size relative to the face size",
    )
    min_confidence: float = Field(
        default=0.5, ge=0, le=1, description="faces scoring below this are ignored"
    )
    padding: float = Field(
        default=0.15, ge=0, le=1, description="fraction of the face box size added on each side"
    )


@dataclass(frozen=True)
class _Spec:
    """One detector's options, as written in MediaPipe's graph for it."""

    weights: str
    size: int  # square input tensor; also x/y/w/h_scale of the decoder
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    num_boxes: int


SPECS: dict[str, _Spec] = {
    "short": _Spec("face_detection_short_range", 128, (8, 16, 16, 16), 1.0, 896),
    "full": _Spec("face_detection_full_range", 192, (4,), 0.0, 2304),
}
SCORE_CLIPPING_THRESH = 100.0
MIN_SUPPRESSION_THRESHOLD = 0.3


def ssd_anchors(spec: _Spec) -> F32:
    """Anchor centres ``[N, 2]`` (x, y), normalised, in SsdAnchorsCalculator's order.

    With ``fixed_anchor_size`` every anchor is 1x1, so only the centres and the number of
    anchors per cell matter: consecutive layers with equal stride share one grid, each adding
    one anchor per aspect ratio (only 1.0 here) plus one interpolated-scale anchor if enabled.
    """
    out: list[F32] = []
    layer, n = 0, len(spec.strides)
    while layer < n:
        last, per_cell = layer, 0
        while last < n and spec.strides[last] == spec.strides[layer]:
            per_cell += 1 + (spec.interpolated_scale_aspect_ratio > 0.0)
            last += 1
        fm = math.ceil(spec.size / spec.strides[layer])
        ys, xs = np.meshgrid(np.arange(fm), np.arange(fm), indexing="ij")
        centres = np.stack([(xs + 0.5) / fm, (ys + 0.5) / fm], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0).astype(np.float32))
        layer = last
    return np.concatenate(out)


def weighted_nms(boxes: F32, scores: F32, threshold: float) -> tuple[F32, F32]:
    """MediaPipe's WEIGHTED non-max suppression over ``[N,4]`` (x0, y0, x1, y1) boxes.

    Each round takes the best remaining detection and every detection overlapping it by more
    than ``threshold`` IoU (itself included); the kept box is their score-weighted mean box, the
    kept score is the best one. Averaging steadies the box from frame to frame.
    """
    order = np.argsort(-scores, kind="stable")
    kept_boxes: list[F32] = []
    kept_scores: list[float] = []
    while order.size:
        top, rest = boxes[order[0]], boxes[order]
        iw = np.clip(np.minimum(rest[:, 2], top[2]) - np.maximum(rest[:, 0], top[0]), 0, None)
        ih = np.clip(np.minimum(rest[:, 3], top[3]) - np.maximum(rest[:, 1], top[1]), 0, None)
        inter = iw * ih
        area = (rest[:, 2] - rest[:, 0]) * (rest[:, 3] - rest[:, 1])
        union = area + (top[2] - top[0]) * (top[3] - top[1]) - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        cand = iou > threshold
        box = top
        if cand.any():
            w = scores[order[cand]]
            box = (rest[cand] * w[:, None]).sum(axis=0) / w.sum()
        kept_boxes.append(box.astype(np.float32))
        kept_scores.append(float(scores[order[0]]))
        if not cand.any():  # MediaPipe stops when a round removes nothing
            break
        order = order[~cand]
    return (
        np.array(kept_boxes, np.float32).reshape(-1, 4),
        np.array(kept_scores, np.float32),
    )


def padded_pixel_box(box: Box, padding: float, width: int, height: int) -> tuple[int, ...]:
    """Integer ``(x0, y0, x1, y1)`` of the padded box, end-exclusive and clipped to the frame."""
    px, py = (box["x1"] - box["x0"]) * padding, (box["y1"] - box["y0"]) * padding
    x0 = min(max(math.floor(box["x0"] - px), 0), width)
    y0 = min(max(math.floor(box["y0"] - py), 0), height)
    x1 = min(max(math.ceil(box["x1"] + px), 0), width)
    y1 = min(max(math.ceil(box["y1"] + py), 0), height)
    return x0, y0, x1, y1


class FacesRunner:
    """Holds one lazily created interpreter per model; interpreters are not thread-safe."""

    def __init__(self, num_threads: int | None = None) -> None:
        self._threads = num_threads or min(4, os.cpu_count() or 1)
        self._interpreters: dict[str, Any] = {}
        self._anchors = {k: ssd_anchors(s) for k, s in SPECS.items()}
        self._lock = threading.Lock()

    def _interpreter(self, model: str) -> Any:
        if model not in self._interpreters:
            path = models.weights_path(SPECS[model].weights)
            self._interpreters[model] = interpreter(path, self._threads)
        return self._interpreters[model]

    def detect(self, frame: Frames, model: str, min_confidence: float) -> list[Box]:
        """Faces in one RGB frame ``uint8[H,W,3]``, in its pixel coordinates."""
        spec, anchors = SPECS[model], self._anchors[model]
        h, w = frame.shape[:2]
        s = spec.size
        # Letterbox (ImageToTensorCalculator keep_aspect_ratio, BORDER_ZERO), centred.
        nw, nh = max(1, round(w * s / max(w, h))), max(1, round(h * s / max(w, h)))
        # INTER_AREA when shrinking (MediaPipe samples bilinearly, which aliases on large frames).
        filt = cv2.INTER_AREA if nw < w else cv2.INTER_LINEAR
        resized = cv2.resize(frame, (nw, nh), interpolation=filt)
        ox, oy = (s - nw) // 2, (s - nh) // 2
        canvas = np.zeros((s, s, 3), np.float32)
        canvas[oy : oy + nh, ox : ox + nw] = resized
        tensor = (canvas / 127.5 - 1.0)[None].astype(np.float32)
        with self._lock:
            interp = self._interpreter(model)
            interp.set_tensor(interp.get_input_details()[0]["index"], tensor)
            interp.invoke()
            outs = {
                d["shape"][-1]: interp.get_tensor(d["index"])[0]
                for d in interp.get_output_details()
            }
        raw, logits = cast(F32, outs[16]), cast(F32, outs[1])[:, 0]
        if not raw.shape[0] == len(anchors) == spec.num_boxes:
            raise RuntimeError(f"{spec.weights}: {raw.shape[0]} boxes, {len(anchors)} anchors")
        # TensorsToDetections: clipped sigmoid score, x/y/w/h order, fixed 1x1 anchors.
        clipped = np.clip(logits.astype(np.float64), -SCORE_CLIPPING_THRESH, SCORE_CLIPPING_THRESH)
        scores = (1 / (1 + np.exp(-clipped))).astype(np.float32)  # float64: exp(100) fits
        keep = scores >= min_confidence
        if not keep.any():
            return []
        r, a = raw[keep], anchors[keep]
        cx, cy = r[:, 0] / s + a[:, 0], r[:, 1] / s + a[:, 1]
        bw, bh = r[:, 2] / s, r[:, 3] / s
        decoded = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        boxes, kept = weighted_nms(
            decoded.astype(np.float32), scores[keep], MIN_SUPPRESSION_THRESHOLD
        )
        # DetectionProjection: undo the letterbox, then clip to the frame.
        xs = np.clip((boxes[:, [0, 2]] * s - ox) * (w / nw), 0, w)
        ys = np.clip((boxes[:, [1, 3]] * s - oy) * (h / nh), 0, h)
        return [
            {
                "x0": float(x[0]),
                "y0": float(y[0]),
                "x1": float(x[1]),
                "y1": float(y[1]),
                "score": float(sc),
            }
            for x, y, sc in zip(xs, ys, kept, strict=True)
            if x[1] > x[0] and y[1] > y[0]
        ]

    def run(self, frames: Frames, params: EffectParams, context: Context) -> Bands:
        p = cast(FacesParams, params)
        b, h, w = frames.shape[:3]
        boxes = [self.detect(f, p.model, p.min_confidence) for f in frames]
        matte = np.zeros((b, h, w), np.uint8)
        for i, faces in enumerate(boxes):
            for face in faces:
                x0, y0, x1, y1 = padded_pixel_box(face, p.padding, w, h)
                matte[i, y0:y1, x0:x1] = 255
        return {"boxes": boxes, "matte": matte}

    def composite(self, frames: Frames, bands: Bands, params: EffectParams) -> Frames:
        p = cast(FacesParams, params)
        out = frames.copy()
        h, w = frames.shape[1:3]
        for i, faces in enumerate(bands["boxes"]):
            for face in faces:
                x0, y0, x1, y1 = padded_pixel_box(face, p.padding, w, h)
                if x1 <= x0 or y1 <= y0:
                    continue
                size = max(x1 - x0, y1 - y0)
                if p.mode == "box":
                    out[i, y0:y1, x0:x1] = 0
                elif p.mode == "pixelate":
                    block = max(2.0, p.strength * size / 4)
                    roi = out[i, y0:y1, x0:x1]
                    small = (max(1, round((x1 - x0) / block)), max(1, round((y1 - y0) / block)))
                    tiny = cv2.resize(roi, small, interpolation=cv2.INTER_AREA)
                    out[i, y0:y1, x0:x1] = cv2.resize(
                        tiny, roi.shape[1::-1], interpolation=cv2.INTER_NEAREST
                    )
                else:
                    out[i, y0:y1, x0:x1] = _feathered_blur(out[i], (x0, y0, x1, y1), p, size)
        return out


def _ramp(n: int, feather: float) -> F32:
    """0 at both ends of ``n`` pixels rising to 1 at ``feather`` pixels in: a soft box edge."""
    i = np.arange(n, dtype=np.float32) + 0.5
    return cast(F32, np.clip(np.minimum(i, n - i) / feather, 0, 1))


def _feathered_blur(img: Frames, box: tuple[int, ...], p: FacesParams, size: int) -> Frames:
    """The blurred box blended in with an alpha ramp inside its border, so no hard seam shows.

    The blur reads pixels around the box (not a clamped edge) so the border blends naturally;
    the ramp stays inside the padded box, so nothing outside it changes.
    """
    x0, y0, x1, y1 = box
    h, w = img.shape[:2]
    sigma = max(0.5, p.strength * size / 6)
    m = math.ceil(3 * sigma)
    mx0, my0 = max(0, x0 - m), max(0, y0 - m)
    around = img[my0 : min(h, y1 + m), mx0 : min(w, x1 + m)]
    blurred = cv2.GaussianBlur(around, (0, 0), sigma)[y0 - my0 : y1 - my0, x0 - mx0 : x1 - mx0]
    feather = max(1.0, 0.1 * min(x1 - x0, y1 - y0))
    alpha = (_ramp(y1 - y0, feather)[:, None] * _ramp(x1 - x0, feather)[None, :])[..., None]
    mixed = blurred * alpha + img[y0:y1, x0:x1] * (1 - alpha)
    return cast(Frames, np.clip(mixed + 0.5, 0, 255).astype(np.uint8))


class Faces:
    """Find faces and hide them; the matte lets the browser show the boxes on its own."""

    name: ClassVar[str] = "faces"
    version: ClassVar[str] = "1"
    Params: ClassVar[type[EffectParams]] = FacesParams
    bands: ClassVar[tuple[Band, ...]] = ("boxes", "matte")
    context_frames: ClassVar[int] = 0
    # LiteRT on the CPU only: the ai-edge-litert wheel ships no GPU delegate for Linux (only a
    # WebGPU accelerator for its CompiledModel API), and the models are tiny (0.2-0.7 MB, 128/192 px
    # input, a few ms a frame on one core), so copies to and from a GPU would eat the gain. On a
    # cuda worker it runs on the host's cores; `devices.litert_delegates` still uses a GPU
    # delegate if one is installed (PLAYHEAD_LITERT_GPU_DELEGATE), without routing relying on it.
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    batch_sizes: ClassVar[Mapping[str, int]] = {"cpu": 8}

    def load(self) -> FacesRunner:
        return FacesRunner()
