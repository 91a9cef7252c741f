"""The faces effect on a real clip: MediaPipe detectors plus our port of their post-processing."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from playhead.effects.base import Context, Effect, Frames
from playhead.effects.faces import SPECS, Faces, FacesParams, FacesRunner, ssd_anchors

CTX = Context(first_frame=0, fps=30.0)
N_FRAMES = 30


@pytest.fixture(scope="module")
def frames(carphone_path: Path) -> Frames:
    with av.open(str(carphone_path)) as container:
        decoded = [
            f.to_ndarray(format="rgb24")
            for _, f in zip(range(N_FRAMES), container.decode(video=0), strict=False)
        ]
    return np.stack(decoded)


@pytest.fixture(scope="module")
def runner() -> FacesRunner:
    return Faces().load()


def test_satisfies_effect_protocol() -> None:
    effect: Effect = Faces()
    assert effect.name == "faces" and effect.bands == ("boxes", "matte")
    schema = FacesParams.model_json_schema()["properties"]
    assert all("description" in schema[k] for k in ("model", "mode", "strength", "padding"))


def test_anchor_counts_match_models() -> None:
    assert len(ssd_anchors(SPECS["short"])) == 896
    assert len(ssd_anchors(SPECS["full"])) == 2304


def _assert_plausible(frames: Frames, boxes: list[list[dict[str, float]]]) -> None:
    h, w = frames.shape[1:3]
    found = [faces for faces in boxes if faces]
    assert len(found) >= len(boxes) - 1, f"face missed in {len(boxes) - len(found)} frames"
    for faces in found:
        best = max(faces, key=lambda f: f["score"])
        assert best["score"] > 0.5
        assert 0 <= best["x0"] < best["x1"] <= w and 0 <= best["y0"] < best["y1"] <= h
        assert 20 <= best["x1"] - best["x0"] <= 120
        cx, cy = (best["x0"] + best["x1"]) / 2, (best["y0"] + best["y1"]) / 2
        assert w * 0.25 < cx < w * 0.75 and h * 0.2 < cy < h * 0.7


def test_short_model_finds_the_face(runner: FacesRunner, frames: Frames) -> None:
    bands = runner.run(frames, FacesParams(model="short"), CTX)
    _assert_plausible(frames, bands["boxes"])
    assert bands["matte"].shape == frames.shape[:3] and bands["matte"].dtype == np.uint8
    assert set(np.unique(bands["matte"])) == {0, 255}


def test_full_model_finds_the_face(runner: FacesRunner, frames: Frames) -> None:
    # No upscaling needed: at 176x144 the full-range model still scores the face ~0.8.
    bands = runner.run(frames, FacesParams(model="full"), CTX)
    _assert_plausible(frames, bands["boxes"])


@pytest.mark.parametrize("model", ["short", "full"])
def test_flat_grey_frame_has_no_face(runner: FacesRunner, model: str) -> None:
    grey = np.full((2, 144, 176, 3), 128, np.uint8)
    bands = runner.run(grey, FacesParams.model_validate({"model": model}), CTX)
    assert bands["boxes"] == [[], []]
    assert not bands["matte"].any()


@pytest.mark.parametrize("mode", ["blur", "pixelate", "box"])
def test_composite_changes_only_the_face(runner: FacesRunner, frames: Frames, mode: str) -> None:
    params = FacesParams.model_validate({"mode": mode})
    batch = frames[:4]
    bands = runner.run(batch, params, CTX)
    out = runner.composite(batch, bands, params)
    assert out.shape == batch.shape and out.dtype == np.uint8
    inside = bands["matte"] == 255
    diff = np.abs(out.astype(np.int16) - batch.astype(np.int16)).max(axis=-1)
    assert diff[inside].mean() > 5  # the face is visibly altered
    assert not diff[~inside].any()  # nothing outside the padded boxes is touched


@pytest.mark.parametrize("model", ["short", "full"])
def test_boxes_map_back_through_the_letterbox(
    runner: FacesRunner, frames: Frames, model: str
) -> None:
    # The face pasted 3x larger into a wide HD frame, off centre: the box must follow it.
    params = FacesParams.model_validate({"model": model})
    small = runner.run(frames[:1], params, CTX)["boxes"][0][0]
    big = np.zeros((1, 720, 1280, 3), np.uint8)
    big[0, 200:632, 700:1228] = np.repeat(np.repeat(frames[0], 3, axis=0), 3, axis=1)
    found = runner.run(big, params, CTX)["boxes"][0]
    assert len(found) == 1
    # Compare centre and width loosely: in the 128/192 px input the face is now ~2.5x smaller,
    # so the detector's own estimate wobbles by a few tensor pixels.
    (sx, sy), (bx, by) = _centre(small), _centre(found[0])
    width = 3 * (small["x1"] - small["x0"])
    assert abs(bx - (700 + 3 * sx)) < 0.1 * width and abs(by - (200 + 3 * sy)) < 0.1 * width
    assert 0.8 < (found[0]["x1"] - found[0]["x0"]) / width < 1.25


def _centre(box: dict[str, float]) -> tuple[float, float]:
    return (box["x0"] + box["x1"]) / 2, (box["y0"] + box["y1"]) / 2
