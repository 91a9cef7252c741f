"""Carrying a clicked mask through a video: appearance memory, re-detection, flow and SAM.

Three pieces, each small:

- `Memory`: what the subject and its surroundings look like in the encoder's feature space,
  taken from the annotated frames (their masks say which 16x16-pixel cells are subject and
  which are not). Matching a new frame's features against it gives a coarse map of where the
  subject is, whatever happened in between — the anchor for re-detection and a guard against
  leaks into look-alike surroundings.
- `redetect`: a mask on a frame with no previous mask (the first frame of a segment far from
  any annotated frame): the memory's map proposes a box and points, SAM draws the mask.
- `Tracker.step`: the previous mask warped by optical flow to the next frame, and on every
  n-th frame re-segmented by SAM prompted from the warped mask (its box and inner points),
  keeping only what lies near the warped mask or looks like the subject.

Everything here is a pure function of the frames and the prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from playhead.effects.sam import SIZE, Embedding, Point, Sam

GRID = 64  # the embedding's cells per side (each covers 16x16 pixels of the 1024² input)
SAMPLES = 768  # features kept per side of the memory (enough for the subject's looks)
TOP_K = 8  # similarity to the k nearest memory features, averaged

Mask = npt.NDArray[np.bool_]


def valid_cells(size: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of the grid that cover the frame (the rest is padding)."""
    h, w = size
    scale = SIZE / max(h, w)
    return max(1, round(h * scale / 16)), max(1, round(w * scale / 16))


def cell_fractions(mask: Mask) -> np.ndarray:
    """The fraction of each valid grid cell that the mask covers, ``float32[rows, cols]``."""
    rows, cols = valid_cells(mask.shape[:2])
    out: np.ndarray = cv2.resize(
        mask.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA
    )
    return out


def _features(embedding: Embedding, size: tuple[int, int]) -> np.ndarray:
    """Unit-length features of the valid cells, ``float32[rows, cols, 256]``."""
    rows, cols = valid_cells(size)
    f = embedding[0, :, :rows, :cols].transpose(1, 2, 0).astype(np.float32)
    unit: np.ndarray = f / (np.linalg.norm(f, axis=2, keepdims=True) + 1e-6)
    return unit


def _spread(features: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of the rows, evenly spaced (deterministic, unlike sampling)."""
    if len(features) <= limit:
        return features
    picked: np.ndarray = features[np.linspace(0, len(features) - 1, limit).round().astype(int)]
    return picked


@dataclass(frozen=True)
class Memory:
    subject: np.ndarray  # [N, 256] unit features of cells inside the annotated masks
    other: np.ndarray  # [M, 256] of cells outside them

    @classmethod
    def build(cls, views: Sequence[tuple[Embedding, Mask]]) -> Memory:
        """From annotated frames: each frame's embedding and its mask."""
        inside, outside = [], []
        for embedding, mask in views:
            feats = _features(embedding, mask.shape[:2])
            frac = cell_fractions(mask)
            inside.append(feats[frac >= 0.75])
            outside.append(feats[frac <= 0.05])
        subject = _spread(np.concatenate(inside), SAMPLES) if inside else np.zeros((0, 256))
        other = _spread(np.concatenate(outside), SAMPLES) if outside else np.zeros((0, 256))
        return cls(subject.astype(np.float32), other.astype(np.float32))

    def likeness(self, embedding: Embedding, size: tuple[int, int]) -> np.ndarray:
        """Per valid cell: similarity to the subject minus similarity to the rest, in -2..2."""
        feats = _features(embedding, size)
        rows, cols = feats.shape[:2]
        flat = feats.reshape(-1, feats.shape[2])
        score: np.ndarray = _top_k(self.subject, flat) - _top_k(self.other, flat)
        return score.reshape(rows, cols)


def _top_k(memory: np.ndarray, flat: np.ndarray) -> np.ndarray:
    if len(memory) == 0:
        return np.zeros(len(flat), np.float32)
    sims = memory @ flat.T  # [N, cells]
    k = min(TOP_K, len(memory))
    top: np.ndarray = np.partition(sims, len(memory) - k, axis=0)[-k:].mean(axis=0)
    return top


def _upsample(cells: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A cell map at frame resolution (the valid cells cover the frame exactly)."""
    h, w = size
    out: np.ndarray = cv2.resize(cells.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def inner_points(mask: Mask, count: int) -> list[tuple[float, float]]:
    """Up to ``count`` points deep inside the mask, apart from each other (x, y)."""
    if not mask.any():
        return []
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    points: list[tuple[float, float]] = []
    radius = max(2.0, float(dist.max()))
    for _ in range(count):
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        if dist[y, x] <= 0.3 * radius and points:
            break  # what is left is a thin rim: points there mislead SAM
        points.append((float(x), float(y)))
        cv2.circle(dist, (int(x), int(y)), int(radius * 1.5) + 1, 0.0, -1)
    return points


def _box(mask: Mask, grow: float) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = float(xs.min()), float(xs.max() + 1), float(ys.min()), float(ys.max() + 1)
    h, w = mask.shape
    gx, gy = (x1 - x0) * grow, (y1 - y0) * grow
    return max(0.0, x0 - gx), max(0.0, y0 - gy), min(float(w), x1 + gx), min(float(h), y1 + gy)


def _keep_touching(mask: Mask, seed: Mask) -> Mask:
    """The connected parts of ``mask`` that overlap ``seed``."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask
    touched = np.unique(labels[seed & mask])
    return np.isin(labels, touched[touched > 0])


def redetect(sam: Sam, embedding: Embedding, size: tuple[int, int], memory: Memory) -> Mask:
    """The subject on a frame with no previous mask, found by the memory alone."""
    likeness = memory.likeness(embedding, size)
    candidates = (likeness > 0).astype(np.uint8)
    if not candidates.any():
        return np.zeros(size, bool)
    # the most subject-like connected blob of cells (not every look-alike cell in the frame)
    count, labels = cv2.connectedComponents(candidates, connectivity=8)
    weight = [float(likeness[labels == i].sum()) for i in range(1, count)]
    blob = labels == 1 + int(np.argmax(weight))
    coarse = _upsample(blob, size) > 0.5
    if not coarse.any():
        return np.zeros(size, bool)
    points = [Point(x, y, 1) for x, y in inner_points(coarse, 2)]
    seg = sam.segment(embedding, size, points, box=_box(coarse, 0.15))
    found = seg.mask > 0
    return _guard(found, coarse, _upsample(likeness, size))


def _guard(mask: Mask, prior: Mask, likeness: np.ndarray) -> Mask:
    """Cut leaks: keep what lies near the prior or looks like the subject, attached to it."""
    if not prior.any():
        return mask
    ys, xs = np.nonzero(prior)
    reach = max(3, round(0.15 * max(np.ptp(ys) + 1, np.ptp(xs) + 1)))
    near = cv2.dilate(prior.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    kept = mask & ((near > 0) | (likeness > 0.05))
    return _keep_touching(kept, prior)


def warp(mask: np.ndarray, flow_back: np.ndarray) -> np.ndarray:
    """A float mask moved along the flow: ``flow_back`` maps next-frame pixels to this one's."""
    h, w = mask.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        mask.astype(np.float32),
        gx + flow_back[..., 0],
        gy + flow_back[..., 1],
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


class Tracker:
    """Steps a mask from frame to frame: flow always, SAM on the frames it is asked to."""

    def __init__(self, sam: Sam, embed: Callable[[np.ndarray], Embedding], memory: Memory):
        self.sam = sam
        self.embed = embed
        self.memory = memory
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # type: ignore[attr-defined]

    def step(self, frame: np.ndarray, mask: Mask, target: np.ndarray, resegment: bool) -> Mask:
        """The mask on ``target`` (the next frame either way) from ``mask`` on ``frame``."""
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        grey_next = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY)
        flow_back = self._dis.calc(grey_next, grey, None)
        warped = warp(mask, flow_back) >= 0.5
        if not resegment:
            return warped
        size = target.shape[:2]
        embedding = self.embed(target)
        if not warped.any():  # lost (it left the frame, or was hidden): look for it again
            return redetect(self.sam, embedding, size, self.memory)
        likeness = _upsample(self.memory.likeness(embedding, size), size)
        inner = [(x, y) for x, y in inner_points(warped, 3) if likeness[int(y), int(x)] > -0.05]
        if not inner:  # nothing in the warped mask looks like the subject any more
            inner = inner_points(warped, 1)
        points = [Point(x, y, 1) for x, y in inner]
        seg = self.sam.segment(embedding, size, points, box=_box(warped, 0.1))
        return _guard(seg.mask > 0, warped, likeness)
