"""Scores of a rotoscoping result against exact ground truth, and the clicks a user would make.

Scores follow DAVIS (Perazzi et al. 2016, davis2017-evaluation): J is the region Jaccard index,
F the boundary F-measure, both per frame and averaged over a sequence. The clicks are
simulated from the ground truth, as interactive-segmentation benchmarks do.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# --- scores -----------------------------------------------------------------------------------


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two bool masks of the same shape (1.0 when both are empty).

    Counts all their pixels at once: a video's J is the mean of per-frame values (`score`)."""
    pred, gt = _bools(pred, gt)
    union = int(np.count_nonzero(pred | gt))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(pred & gt)) / union


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """DAVIS's boundary F-measure of one frame's masks.

    Each mask's boundary is the set of pixels where it changes towards the right, bottom or
    bottom-right neighbour; a boundary pixel of one mask matches when the other's boundary lies
    within a disk of ``bound_th`` times the image diagonal (rounded up; ``bound_th >= 1`` is a
    radius in pixels). Precision and recall are the matched fractions of the predicted and true
    boundaries; F is their harmonic mean. Both boundaries empty: 1.0; only one: 0.0.
    """
    pred, gt = _bools(pred, gt)
    if pred.ndim != 2:
        raise ValueError(f"boundary_f takes one frame's [H, W] masks, not {pred.shape}")
    radius = bound_th if bound_th >= 1 else bound_th * math.hypot(*pred.shape)
    r = math.ceil(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disk = (xx * xx + yy * yy <= r * r).astype(np.uint8)
    pb, gb = _boundary(pred), _boundary(gt)
    n_pred, n_gt = int(np.count_nonzero(pb)), int(np.count_nonzero(gb))
    if n_pred == 0 or n_gt == 0:
        return 1.0 if n_pred == n_gt else 0.0
    near_pred = cv2.dilate(pb.astype(np.uint8), disk) > 0
    near_gt = cv2.dilate(gb.astype(np.uint8), disk) > 0
    precision = np.count_nonzero(pb & near_gt) / n_pred
    recall = np.count_nonzero(gb & near_pred) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def score(pred: np.ndarray, gt: np.ndarray, occluded: np.ndarray | None = None) -> dict[str, float]:
    """A sequence's scores from bool [T, H, W] predicted and true masks, every frame counted.

    ``J`` and ``F``: means of the per-frame `jaccard` and `boundary_f`; ``JF``: their mean.
    ``decay``: mean J over the first quarter of the frames minus over the last (DAVIS's bins,
    which share their edge frames); positive when the tracker drifts. ``recovery``: mean J over
    the frames after the occluder's last frame (pass ``Sequence.occluded``). The key is left
    out, not NaN, when there is no such stretch (no occluder, or one that never leaves), so a
    table's mean over sequences never silently turns NaN.
    """
    pred, gt = _bools(pred, gt)
    if gt.ndim != 3 or len(gt) == 0:
        raise ValueError(f"score takes [T, H, W] masks, not {gt.shape}")
    j = np.array([jaccard(p, g) for p, g in zip(pred, gt, strict=True)])
    f = np.array([boundary_f(p, g) for p, g in zip(pred, gt, strict=True)])
    # DAVIS's quarter edges (rounding halves up, as its 1e-10 does)
    edges = np.round(np.linspace(1, len(j), 5) + 1e-10).astype(int) - 1
    first, last = j[edges[0] : edges[1] + 1], j[edges[3] : edges[4] + 1]
    out = {
        "J": float(j.mean()),
        "F": float(f.mean()),
        "JF": float((j.mean() + f.mean()) / 2),
        "decay": float(first.mean() - last.mean()),
    }
    if occluded is not None and np.any(occluded):
        after = j[int(np.flatnonzero(occluded)[-1]) + 1 :]
        if after.size:
            out["recovery"] = float(after.mean())
    return out


# --- simulated clicks -------------------------------------------------------------------------


def initial_clicks(
    gt: np.ndarray, rng: np.random.Generator, positives: int = 3, negatives: int = 2
) -> list[dict[str, float]]:
    """Clicks a careful user would make on the first frame: ``positives`` well inside the
    object and spread over it, ``negatives`` on the background in a ring close around it.

    Coordinates are frame pixels, x = column and y = row of the clicked pixel (so
    ``gt[int(y), int(x)]`` is the click's label). Raises ValueError on an empty mask."""
    gt = np.asarray(gt, dtype=bool)
    if not gt.any():
        raise ValueError("no object to click on: the mask is empty")
    depth = _interior(gt)
    # deep enough that a small registration error still lands inside: the top half of depths
    deep = np.argwhere(depth >= 0.5 * depth.max())
    first = np.unravel_index(int(np.argmax(depth)), depth.shape)
    picks = _spread(deep, np.array([first]), positives, rng)
    clicks = [{"x": float(c), "y": float(r), "label": 1} for r, c in picks[:positives]]

    # the ring: far enough out to be unambiguous, near enough to tell the object's extent
    outside = cv2.distanceTransform((~gt).astype(np.uint8), cv2.DIST_L2, 5)
    gap = max(3.0, 0.08 * math.sqrt(np.count_nonzero(gt)))
    ring = np.argwhere((outside >= gap) & (outside <= 2.5 * gap))
    if len(ring) == 0:  # the object fills the frame: any background will do
        ring = np.argwhere(outside >= 1)
    if negatives > 0 and len(ring):
        start = ring[rng.integers(len(ring))][None]
        for r, c in _spread(ring, start, negatives, rng):
            clicks.append({"x": float(c), "y": float(r), "label": 0})
    return clicks


def correction_click(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """The next click of a simulated user (as RITM / interactive-segmentation benchmarks do):
    at the interior-most pixel of the largest error region — label 1 in a missed part of the
    object, 0 in a wrongly included part. Ties go to the missed part. Raises ValueError when
    ``pred`` equals ``gt`` (there is nothing to correct)."""
    pred, gt = _bools(pred, gt)
    best: tuple[int, int, np.ndarray] | None = None  # (area, label, region)
    for label, error in ((1, gt & ~pred), (0, pred & ~gt)):
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            error.astype(np.uint8), connectivity=8
        )
        for i in range(1, n):
            area = int(stats[i, cv2.CC_STAT_AREA])
            if best is None or area > best[0]:
                best = (area, label, labels == i)
    if best is None:
        raise ValueError("the prediction is already the ground truth: nothing to correct")
    _, label, region = best
    r, c = np.unravel_index(int(np.argmax(_interior(region))), region.shape)
    return {"x": float(c), "y": float(r), "label": label}


def _bools(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} vs {gt.shape}")
    return pred, gt


def _boundary(mask: np.ndarray) -> np.ndarray:
    """1-pixel boundary as DAVIS computes it (``seg2bmap``): a pixel differing from its right,
    bottom or bottom-right neighbour; in the last row and column only along the edge."""
    right, down, diag = (np.zeros_like(mask) for _ in range(3))
    right[:, :-1] = mask[:, 1:]
    down[:-1, :] = mask[1:, :]
    diag[:-1, :-1] = mask[1:, 1:]
    b: np.ndarray = (mask ^ right) | (mask ^ down) | (mask ^ diag)
    b[-1, :] = mask[-1, :] ^ right[-1, :]
    b[:, -1] = mask[:, -1] ^ down[:, -1]
    b[-1, -1] = False
    return b


def _interior(mask: np.ndarray) -> np.ndarray:
    """Distance of each mask pixel to the nearest non-mask pixel, the frame's edge counting as
    outside (so that a click is never put on the border of a cropped region)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    depth: np.ndarray = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    return depth


def _spread(
    candidates: np.ndarray, chosen: np.ndarray, count: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """``count`` points: ``chosen`` then, greedily, the candidate farthest from all picked so
    far (a random subset of candidates keeps this cheap on big masks)."""
    if len(candidates) > 512:
        candidates = candidates[rng.choice(len(candidates), 512, replace=False)]
    picked = [(int(p[0]), int(p[1])) for p in chosen[:count]]
    nearest = np.min(np.linalg.norm(candidates[:, None] - chosen[None], axis=2), axis=1)
    while len(picked) < count and nearest.max() > 0:
        i = int(np.argmax(nearest))
        picked.append((int(candidates[i, 0]), int(candidates[i, 1])))
        nearest = np.minimum(nearest, np.linalg.norm(candidates - candidates[i], axis=1))
    return picked
