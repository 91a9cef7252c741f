"""The synthetic rotoscoping suite: scores with known answers on hand-made masks, and videos
whose ground truth is really the object (deterministic, moving, occluded when it says so)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import cv2
import numpy as np
import pytest

from playhead.bench import roto_scores as scores
from playhead.bench import roto_suite as rs

SIZE = (90, 160)  # diagonal 183.6 px: the default tolerance is ceil(0.008 * 183.6) = 2 px
FRAMES = 6


@pytest.fixture(scope="module")
def seed0() -> list[rs.Sequence]:
    return rs.suite(seeds=(0,), frames=FRAMES, size=SIZE)


def _kind(seqs: list[rs.Sequence], kind: str) -> rs.Sequence:
    return next(s for s in seqs if s.name.startswith(kind + "-"))


def _square(top: int, left: int, side: int = 40, size: tuple[int, int] = SIZE) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[top : top + side, left : left + side] = True
    return mask


# --- jaccard and boundary_f -------------------------------------------------------------------


def test_jaccard_known_answers() -> None:
    a = _square(20, 20)
    assert scores.jaccard(a, _square(20, 30)) == pytest.approx(30 * 40 / (50 * 40))  # 0.6
    assert scores.jaccard(a, a) == 1.0
    assert scores.jaccard(a, _square(20, 100)) == 0.0
    assert scores.jaccard(np.zeros(SIZE, bool), np.zeros(SIZE, bool)) == 1.0
    assert scores.jaccard(a, np.zeros(SIZE, bool)) == 0.0
    with pytest.raises(ValueError):
        scores.jaccard(a, a[:-1])


def test_boundary_f_identical_and_empty() -> None:
    a = _square(20, 20)
    empty = np.zeros(SIZE, bool)
    assert scores.boundary_f(a, a) == 1.0
    assert scores.boundary_f(empty, empty) == 1.0
    assert scores.boundary_f(a, empty) == 0.0
    assert scores.boundary_f(empty, a) == 0.0
    assert scores.boundary_f(a, _square(20, 100)) == 0.0  # far apart: nothing matches


def test_boundary_f_tolerance() -> None:
    """A straight boundary (a half plane) shifted by up to the tolerance matches everywhere,
    one pixel more matches nowhere; a square shifted beyond it keeps only its top and bottom."""
    gt = np.zeros(SIZE, bool)
    gt[:, 80:] = True
    for shift, expected in ((1, 1.0), (2, 1.0), (3, 0.0)):
        pred = np.zeros(SIZE, bool)
        pred[:, 80 + shift :] = True
        assert scores.boundary_f(pred, gt) == expected, shift

    square = _square(20, 20)
    assert scores.boundary_f(_square(20, 22), square) == 1.0
    assert scores.boundary_f(_square(18, 20), square) == 1.0
    assert scores.boundary_f(_square(22, 18), square) < 1.0  # corners 2.8 px apart: beyond
    partial = scores.boundary_f(_square(20, 25), square)
    assert 0.3 < partial < 0.8
    # a larger tolerance (3 px wins less than 5 px does) forgives the same shift
    assert scores.boundary_f(_square(20, 25), square, bound_th=5) == 1.0


def _brute_boundary_f(pred: np.ndarray, gt: np.ndarray, radius: int) -> float:
    """The definition, pixel by pixel: boundary pixels differ from their right, bottom or
    bottom-right neighbour (the last row and column look along the edge only); a boundary
    pixel matches when the other boundary is within ``radius`` (Euclidean)."""

    def boundary(m: np.ndarray) -> np.ndarray:
        h, w = m.shape
        pts = []
        for y, x in itertools.product(range(h), range(w)):
            neighbours = [(y, x + 1), (y + 1, x), (y + 1, x + 1)]
            if y == h - 1:
                neighbours = [(y, x + 1)]
            if x == w - 1:
                neighbours = [(y + 1, x)] if y < h - 1 else []
            if any((m[ny, nx] if ny < h and nx < w else False) != m[y, x] for ny, nx in neighbours):
                pts.append((y, x))
        return np.array(pts, float).reshape(-1, 2)

    bp, bg = boundary(pred), boundary(gt)
    d = np.linalg.norm(bp[:, None] - bg[None], axis=2)
    precision = float(np.mean(d.min(axis=1) <= radius))
    recall = float(np.mean(d.min(axis=0) <= radius))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def test_boundary_f_matches_the_definition() -> None:
    rng = np.random.default_rng(3)
    for _ in range(4):
        masks = []
        for _ in range(2):
            m = np.zeros((40, 60), np.uint8)
            cx, cy = rng.integers(15, 45), rng.integers(12, 28)
            axes = (int(rng.integers(6, 14)), int(rng.integers(6, 12)))
            cv2.ellipse(m, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
            masks.append(m.astype(bool))
        pred, gt = masks
        for radius in (1, 3):
            expected = _brute_boundary_f(pred, gt, radius)
            assert scores.boundary_f(pred, gt, bound_th=radius) == pytest.approx(expected)


# --- score ------------------------------------------------------------------------------------


def test_score_known_answers() -> None:
    gt = np.stack([_square(20, 20 + 5 * t) for t in range(8)])
    perfect = scores.score(gt, gt)
    assert perfect == {"J": 1.0, "F": 1.0, "JF": 1.0, "decay": 0.0}

    lost = gt.copy()
    lost[4:] = False  # tracked for 4 frames, then lost
    s = scores.score(lost, gt)
    assert s["J"] == 0.5
    assert s["F"] == 0.5
    assert s["JF"] == 0.5
    assert s["decay"] == 1.0  # DAVIS's quarters of 8 frames: 0..2 and 5..7
    assert "recovery" not in s

    occluded = np.zeros(8, bool)
    occluded[1] = True
    assert scores.score(lost, gt, occluded)["recovery"] == pytest.approx(2 / 6)
    occluded[5] = True
    assert scores.score(lost, gt, occluded)["recovery"] == 0.0
    occluded[7] = True  # never leaves: no frames to recover in
    assert "recovery" not in scores.score(lost, gt, occluded)


# --- clicks -----------------------------------------------------------------------------------


def test_initial_clicks_inside_and_around() -> None:
    gt = np.zeros(SIZE, bool)
    cv2.ellipse(gt.view(np.uint8), (70, 45), (40, 25), 20, 0, 360, 1, -1)
    clicks = scores.initial_clicks(gt, np.random.default_rng(0))
    assert [c["label"] for c in clicks] == [1, 1, 1, 0, 0]
    outside = cv2.distanceTransform((~gt).astype(np.uint8), cv2.DIST_L2, 5)
    depth = cv2.distanceTransform(gt.astype(np.uint8), cv2.DIST_L2, 5)
    for c in clicks:
        x, y = int(c["x"]), int(c["y"])
        assert (x, y) == (c["x"], c["y"])  # whole pixels
        if c["label"] == 1:
            assert gt[y, x] and depth[y, x] >= 0.5 * depth.max()  # well inside
        else:
            assert not gt[y, x] and 3 <= outside[y, x] <= 20  # outside, but near
    positives = [(c["x"], c["y"]) for c in clicks if c["label"] == 1]
    assert min(math.dist(a, b) for a, b in itertools.combinations(positives, 2)) > 10
    assert clicks == scores.initial_clicks(gt, np.random.default_rng(0))
    with pytest.raises(ValueError):
        scores.initial_clicks(np.zeros(SIZE, bool), np.random.default_rng(0))


def test_initial_clicks_on_the_suite(seed0: list[rs.Sequence]) -> None:
    rng = np.random.default_rng(1)
    for seq in seed0:
        for c in scores.initial_clicks(seq.masks[0], rng):
            assert seq.masks[0][int(c["y"]), int(c["x"])] == bool(c["label"]), seq.name


def test_correction_click_largest_error() -> None:
    gt = _square(20, 20)
    missed = gt.copy()
    missed[20:40, 40:60] = False  # the top-right quarter is missed: a 20x20 false negative
    missed[50:60, 20:25] = False  # and a smaller piece
    click = scores.correction_click(missed, gt)
    assert click["label"] == 1
    assert gt[int(click["y"]), int(click["x"])] and not missed[int(click["y"]), int(click["x"])]
    assert abs(click["x"] - 49.5) <= 1 and abs(click["y"] - 29.5) <= 1  # its middle

    spilled = missed | _square(30, 100, side=30)  # plus a bigger false positive elsewhere
    click = scores.correction_click(spilled, gt)
    assert click["label"] == 0
    assert abs(click["x"] - 114.5) <= 1 and abs(click["y"] - 44.5) <= 1
    with pytest.raises(ValueError):
        scores.correction_click(gt, gt)


# --- the suite --------------------------------------------------------------------------------


def test_suite_shapes_and_kinds(seed0: list[rs.Sequence]) -> None:
    assert sorted(s.name.split("-")[0] for s in seed0) == sorted(rs.KINDS)
    for seq in seed0:
        assert seq.frames.shape == (FRAMES, *SIZE, 3) and seq.frames.dtype == np.uint8
        assert seq.masks.shape == (FRAMES, *SIZE) and seq.masks.dtype == bool
        assert seq.fps == rs.FPS
        assert (seq.occluded is not None) == seq.name.startswith("occluder-")


def test_suite_is_deterministic_per_seed(seed0: list[rs.Sequence]) -> None:
    again = rs.suite(seeds=(0,), frames=FRAMES, size=SIZE)
    other = rs.suite(seeds=(1,), frames=FRAMES, size=SIZE)
    for a, b, c in zip(seed0, again, other, strict=True):
        assert a.name == b.name
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
        assert not np.array_equal(a.frames, c.frames) and not np.array_equal(a.masks, c.masks)


def test_masks_are_nonempty_and_move(seed0: list[rs.Sequence]) -> None:
    for seq in seed0:
        areas = seq.masks.sum(axis=(1, 2))
        assert areas.min() > 0, seq.name
        if seq.occluded is not None:  # the bar may hide most of it
            areas = areas[~seq.occluded]
        assert areas.min() > 400, seq.name  # a third of the frame's height across, or more
        centroids = [np.argwhere(m).mean(axis=0) for m in seq.masks]
        travelled = sum(math.dist(a, b) for a, b in itertools.pairwise(centroids))
        assert travelled > 5, seq.name
        assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(seq.masks)), seq.name


def test_mask_is_where_the_object_was_drawn() -> None:
    """Render the same scene without the object: the frames differ on the mask (the object
    covers it) and, but for a feathered fringe, nowhere else."""
    files = rs.fetch_images()
    scene = rs._scene("affine", "cat", "gravel.png", files, np.random.default_rng(5), 6, SIZE)
    with_it, masks, _ = rs._film(scene, 6)
    without, _, _ = rs._film(dataclasses.replace(scene, layers=()), 6)
    # frame 0 starts at rest (eased keyframes): no motion blur to widen the object
    changed = np.abs(with_it[0].astype(int) - without[0].astype(int)).max(axis=2) > 12
    mask = masks[0]
    assert changed[mask].mean() > 0.9
    fringe = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert not (changed & ~fringe).any()


def test_occluder_hides_part_of_the_object_then_leaves(seed0: list[rs.Sequence]) -> None:
    seq = _kind(seed0, "occluder")
    assert seq.occluded is not None
    hidden = np.flatnonzero(seq.occluded)
    assert 0 < len(hidden) < FRAMES - 1
    assert hidden[-1] < FRAMES - 1  # it leaves before the end: there is a recovery stretch
    areas = seq.masks.sum(axis=(1, 2))
    clear = areas[~seq.occluded]
    # the object keeps its scale: only the bar takes area away from the mask
    assert clear.max() < 1.1 * clear.min()
    assert areas[seq.occluded].min() < 0.85 * np.median(clear)
    assert "recovery" in scores.score(seq.masks, seq.masks, seq.occluded)
