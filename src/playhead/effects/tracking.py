"""Carrying a clicked mask through a video: appearance memory, re-detection, flow and SAM.

Three pieces:

- `Memory`: what the subject looks like, from the annotated frames — where it may be on a new
  frame (a linear probe on the encoder's per-cell features, and its colours), and how much a
  whole candidate mask looks like it (pooled features and colour histogram).
- `redetect`: the subject on a frame with no previous mask (the first frame of a segment far
  from any annotated frame, or after the tracker lost it): SAM's masks for clicks on the most
  subject-like places, the one the memory matches best.
- `Tracker.step`: the previous mask warped by optical flow to the next frame; on every n-th
  frame SAM redraws it from the warped mask's box and inner points, kept near the warped mask
  (no leaks into the surroundings), and re-detected when it no longer looks like the subject.

Everything here is a pure function of the frames and the prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from playhead.effects.sam import SIZE, Embedding, Point, Sam

SAMPLES = 768  # cells kept per class to fit the memory's probe (enough for the looks)
RIDGE = 1e-3  # the probe's regularisation (1e-3, 1e-2, 1e-1 tried on the suite: least best)
PEAKS = 5  # places tried, by each cue, when looking for the subject afresh
BLOBS = 3  # and regions, by each cue
NEAR = 0.08  # how far SAM may move an edge from the flow's guess, in object sizes
DRIFTED = 0.8  # a mask matching the memory less than this × the annotated masks has drifted
HIST_BINS = (18, 8, 6)  # hue, saturation, value
HIST_RANGES = (0, 180, 0, 256, 0, 256)

Mask = npt.NDArray[np.bool_]


def valid_cells(size: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of the encoder's 64x64 grid that cover the frame (the rest is padding)."""
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


def _hist(frame: np.ndarray, mask: Mask) -> np.ndarray:
    """The colour histogram (HSV) of the masked pixels, summing to 1."""
    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], mask.astype(np.uint8), list(HIST_BINS), HIST_RANGES)
    out: np.ndarray = h / max(float(h.sum()), 1e-6)
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = (v / (np.linalg.norm(v) + 1e-6)).astype(np.float32)
    return out


def _spread(rows: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of the rows, evenly spaced (deterministic, unlike sampling)."""
    if len(rows) <= limit:
        return rows
    picked: np.ndarray = rows[np.linspace(0, len(rows) - 1, limit).round().astype(int)]
    return picked


@dataclass(frozen=True)
class Memory:
    """What the subject looks like, from the annotated frames.

    Per cell, a *probe* (ridge regression on the encoder's features, +1 inside the masks, -1
    outside, classes weighted equally) says where the subject may be. Per candidate mask, its
    pooled feature against the subject's mean feature and its colour histogram against the
    subject's say whether it is the subject. Cells alone are easily fooled (the encoder's
    features carry their context, so look-alike surroundings score high); a whole mask's
    looks and colours much less (on the quality suite, choosing among SAM's candidates by
    both came within 0.01 J of choosing by the ground truth).
    """

    probe: np.ndarray  # [257]: 256 feature weights and a bias
    prototype: np.ndarray  # [256] unit mean feature of the subject
    colours: np.ndarray  # HSV histogram of the subject
    surroundings: np.ndarray  # HSV histogram of the rest
    area: float  # the subject's mean area, as a fraction of the frame
    reference: float  # how well the annotated masks themselves match (`match`)

    @classmethod
    def build(cls, views: Sequence[tuple[np.ndarray, Embedding, Mask]]) -> Memory:
        """From annotated frames: each frame, its embedding and its mask."""
        inside, outside = [], []
        colours, surroundings = np.zeros(HIST_BINS, np.float32), np.zeros(HIST_BINS, np.float32)
        for frame, embedding, mask in views:
            feats = _features(embedding, mask.shape[:2])
            frac = cell_fractions(mask)
            inside.append(feats[frac >= 0.75])
            outside.append(feats[frac <= 0.05])
            colours += _hist(frame, mask) / len(views)
            surroundings += _hist(frame, ~mask) / len(views)
        pos = _spread(np.concatenate(inside), SAMPLES)
        neg = _spread(np.concatenate(outside), SAMPLES)
        area = float(np.mean([m.mean() for _, _, m in views]))
        probe = np.zeros(257, np.float32)
        if len(pos) and len(neg):
            x = np.hstack([np.concatenate([pos, neg]), np.ones((len(pos) + len(neg), 1))])
            y = np.concatenate([np.ones(len(pos)), -np.ones(len(neg))])
            weight = np.concatenate(
                [np.full(len(pos), 0.5 / len(pos)), np.full(len(neg), 0.5 / len(neg))]
            )
            gram = x.T @ (x * weight[:, None]) + RIDGE * np.eye(x.shape[1])
            probe = np.linalg.solve(gram, x.T @ (weight * y)).astype(np.float32)
        prototype = _unit(pos.mean(axis=0)) if len(pos) else np.zeros(256, np.float32)
        memory = cls(probe, prototype, colours, surroundings, area, reference=1.0)
        reference = float(np.mean([memory.match(f, e, m) for f, e, m in views]))
        return cls(probe, prototype, colours, surroundings, area, max(reference, 1e-3))

    def likeness(self, embedding: Embedding, size: tuple[int, int]) -> np.ndarray:
        """Per valid cell: about +1 where it looks like the subject, -1 where not."""
        feats = _features(embedding, size)
        score: np.ndarray = feats @ self.probe[:256] + self.probe[256]
        return score

    def colour_map(self, frame: np.ndarray) -> np.ndarray:
        """Per pixel: how much more its colour belongs to the subject than to the rest."""
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        ratio = (self.colours / (self.colours + self.surroundings + 1e-6)).astype(np.float32)
        out: np.ndarray = cv2.calcBackProject([hsv], [0, 1, 2], ratio, HIST_RANGES, 1)
        return out

    def match(self, frame: np.ndarray, embedding: Embedding, mask: Mask) -> float:
        """How much a whole mask looks like the subject: features (cosine with the subject's
        mean) plus colours (Bhattacharyya similarity), less for an implausible size."""
        frac = cell_fractions(mask)
        if frac.sum() < 0.5:
            return -1.0
        feats = _features(embedding, mask.shape[:2])
        looks = float(_unit((feats * frac[..., None]).sum(axis=(0, 1))) @ self.prototype)
        colour = 1 - cv2.compareHist(self.colours, _hist(frame, mask), cv2.HISTCMP_BHATTACHARYYA)
        ratio = max(float(mask.mean()), 1e-6) / max(self.area, 1e-6)
        size_penalty = 0.1 * abs(np.log2(ratio)) if not 0.5 <= ratio <= 2 else 0.0
        return looks + float(colour) - size_penalty


def _peaks(score: np.ndarray, size: tuple[int, int], count: int) -> list[tuple[float, float]]:
    """Frame pixels of the ``count`` highest places of a score map (any resolution), apart."""
    rows, cols = score.shape
    h, w = size
    score = score.astype(np.float32).copy()
    gap = max(1, round(0.06 * max(rows, cols)))
    out = []
    for _ in range(count):
        r, c = np.unravel_index(int(np.argmax(score)), score.shape)
        if not np.isfinite(score[r, c]):
            break
        out.append(((c + 0.5) * w / cols, (r + 0.5) * h / rows))
        score[max(0, r - gap) : r + gap + 1, max(0, c - gap) : c + gap + 1] = -np.inf
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


def _near(mask: Mask, reach: float) -> Mask:
    """Pixels within ``reach`` times the mask's size of it."""
    ys, xs = np.nonzero(mask)
    r = max(2, round(reach * max(np.ptp(ys) + 1, np.ptp(xs) + 1)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _iou(a: Mask, b: Mask) -> float:
    union = int(np.count_nonzero(a | b))
    return int(np.count_nonzero(a & b)) / union if union else 0.0


def _blobs(where: np.ndarray, size: tuple[int, int], count: int = BLOBS) -> list[Mask]:
    """The ``count`` largest connected regions of a map (any resolution), at frame size."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(where.astype(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]))[:count]
    h, w = size
    out = []
    for i in order:
        blob = cv2.resize((labels == i).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        if blob.any():
            out.append(blob > 0)
    return out


def redetect(
    sam: Sam,
    frame: np.ndarray,
    embedding: Embedding,
    memory: Memory,
    near: Mask | None = None,
) -> Mask:
    """The subject on ``frame``, found afresh: SAM's masks for a click on each of the places
    that look most like it (by features, by colour, and inside ``near``, where the subject was
    thought to be), the one the memory matches best."""
    size = frame.shape[:2]
    places = _peaks(memory.likeness(embedding, size), size, PEAKS)
    places += _peaks(cv2.blur(memory.colour_map(frame), (15, 15)), size, PEAKS)
    if near is not None and near.any():
        places += inner_points(near, 2)
    prompts: list[tuple[list[Point], tuple[float, float, float, float] | None]]
    prompts = [([Point(x, y, 1)], None) for x, y in places]
    # and the most subject-like blobs, whole: their box and inner points
    for blob in _blobs(memory.likeness(embedding, size) > 0, size) + _blobs(
        cv2.blur(memory.colour_map(frame), (15, 15)) > 127, size
    ):
        prompts.append(([Point(x, y, 1) for x, y in inner_points(blob, 3)], _box(blob, 0.1)))
    best, best_match = np.zeros(size, bool), -np.inf
    for refine in (False, True):
        if refine:  # the best one's box and inner points: the whole subject, not a part
            if not best.any():
                break
            prompts = [([Point(x, y, 1) for x, y in inner_points(best, 3)], _box(best, 0.1))]
        for points, box in prompts:
            for candidate in sam.candidates(embedding, size, points, box):
                mask = candidate.mask > 0
                found = memory.match(frame, embedding, mask)
                if found > best_match:
                    best, best_match = mask, found
    return best


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

    def find(self, frame: np.ndarray) -> Mask:
        """The subject on a frame with no previous mask."""
        return redetect(self.sam, frame, self.embed(frame), self.memory)

    def score(self, frame: np.ndarray, mask: Mask) -> float:
        """How much ``mask`` on ``frame`` looks like the subject (`Memory.match`)."""
        return self.memory.match(frame, self.embed(frame), mask)

    def step(self, frame: np.ndarray, mask: Mask, target: np.ndarray, resegment: bool) -> Mask:
        """The mask on ``target`` (the next frame either way) from ``mask`` on ``frame``."""
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        grey_next = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY)
        flow_back = self._dis.calc(grey_next, grey, None)
        warped = warp(mask, flow_back) >= 0.5
        if not resegment:
            return warped
        embedding = self.embed(target)
        if not warped.any():  # lost (it left the frame, or was hidden): look for it again
            return redetect(self.sam, target, embedding, self.memory)
        # SAM's masks for the warped mask's box and inner points, cut to near the warped mask
        # (SAM refines the edges but may not grow into the surroundings: a leak would grow
        # again at every step), the one most like the warped mask
        points = [Point(x, y, 1) for x, y in inner_points(warped, 3)]
        candidates = self.sam.candidates(embedding, target.shape[:2], points, _box(warped, 0.1))
        near = _near(warped, NEAR)
        best = max(((c.mask > 0) & near for c in candidates), key=lambda m: _iou(m, warped))
        best_match = self.memory.match(target, embedding, best)
        if best_match >= DRIFTED * self.memory.reference:
            return best
        # it does not look like the subject any more (the flow slid off it: fast motion, blur)
        found = redetect(self.sam, target, embedding, self.memory, near=warped)
        return found if self.memory.match(target, embedding, found) > best_match else best
