"""The ``roto`` effect: clicks on annotated frames become a matte through the whole video.

A generated clip with an exact ground truth (a textured disc gliding over a panning textured
background) goes through the real SAM-style models: each segment's matte follows the subject,
also in segments far from the annotated frame (found again by the appearance memory), the
same params give the same pixels in any order, and a click re-renders only the segments
whose masks it can change — the others keep their cache unit and stay ready.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from av.video.stream import VideoStream

from playhead.effects import registry
from playhead.effects.person import GREEN
from playhead.errors import InvalidParamsError
from playhead.media.asset import Asset, AssetDir
from playhead.media.ingest import ingest
from playhead.pipeline import SegmentPipeline
from playhead.renders import Render
from playhead.server.config import ServeConfig
from playhead.server.embedded import Running, serve

W, H, FPS, FRAMES = 192, 128, 8, 32  # four segments of eight frames
RADIUS = 26


def _centre(i: int) -> tuple[int, int]:
    return 50 + 3 * i, 50 + i


def _truth(i: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    cv2.circle(mask, _centre(i), RADIUS, 1, -1)
    return mask > 0


def _clip(path: Path) -> Path:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (H, W + 2 * FRAMES, 3), np.uint8)
    ground: np.ndarray = cv2.GaussianBlur(noise, (0, 0), 2)
    ground = (ground // 2 + 40).astype(np.uint8)  # muted, so the subject stands out
    stripes = np.zeros((2 * RADIUS + 1, 2 * RADIUS + 1, 3), np.uint8)
    stripes[:] = (230, 70, 40)
    stripes[::6] = (250, 210, 60)  # a pattern that moves with the subject, for the flow
    with av.open(str(path), "w") as out:
        stream: VideoStream = out.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "12"}
        for i in range(FRAMES):
            frame: np.ndarray = ground[:, 2 * i : 2 * i + W].copy()  # the camera pans
            x, y = _centre(i)
            patch = frame[y - RADIUS : y + RADIUS + 1, x - RADIUS : x + RADIUS + 1]
            disc = _truth(i)[y - RADIUS : y + RADIUS + 1, x - RADIUS : x + RADIUS + 1]
            patch[disc] = stripes[disc]
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _clip(tmp_path_factory.mktemp("roto") / "disc.mp4")


@pytest.fixture(scope="module")
def local(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Asset, AssetDir]:
    data = tmp_path_factory.mktemp("roto-data")
    asset = ingest(clip, data)
    return asset, AssetDir(data / "assets" / asset.id)


def _click(i: int, label: int = 1) -> dict[str, Any]:
    x, y = _centre(i)
    return {"x": x, "y": y, "label": label}


def _params(*prompts: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"prompts": list(prompts), "every": 4, "feather": 0, **rest}


def _png(data: bytes, flags: int) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    assert image is not None, "not a PNG"
    return np.asarray(image)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_the_same_clicks_in_any_order_make_the_same_render(local: tuple[Asset, AssetDir]) -> None:
    asset, _ = local
    a = {"frame": 2, "points": [_click(2)]}
    b = {"frame": 30, "points": [_click(30), {"x": 5, "y": 5, "label": 0}]}
    one = Render.create(asset, "roto", _params(a, b))
    two = Render.create(asset, "roto", _params(b, a))
    assert one.id == two.id and one.units == two.units
    assert [q["frame"] for q in one.params["prompts"]] == [2, 30]
    assert Render.create(asset, "roto", _params(a)).id != one.id


@pytest.mark.parametrize(
    ("prompts", "says"),
    [
        ([], "at least 1"),
        ([{"frame": 1, "points": [_click(1)]}, {"frame": 1, "points": [_click(1)]}], "merge"),
        ([{"frame": 1, "points": [{"x": 5, "y": 5, "label": 0}]}], "include point"),
        ([{"frame": FRAMES, "points": [_click(1)]}], "past the last frame"),
        ([{"frame": 1, "points": [{"x": W + 1, "y": 5, "label": 1}]}], "outside"),
        ([{"frame": 1, "box": [10, 10, 5, 20]}], "x0 < x1"),
        ([{"frame": 1, "box": [10, 10, W + 9, 20]}], "outside"),
        ([{"frame": 1, "points": [{"x": 5, "y": 5, "label": 2}]}], "label"),
    ],
)
def test_bad_prompts_are_refused_with_the_reason(
    local: tuple[Asset, AssetDir], prompts: list[dict[str, Any]], says: str
) -> None:
    with pytest.raises(InvalidParamsError, match=says):
        Render.create(local[0], "roto", {"prompts": prompts})


def test_a_click_changes_only_the_units_of_segments_near_it(local: tuple[Asset, AssetDir]) -> None:
    asset, _ = local
    assert asset.segments == 4 and asset.segment_frames == 8

    def units(*prompts: dict[str, Any]) -> list[str]:
        return list(Render.create(asset, "roto", _params(*prompts)).units)

    first = {"frame": 1, "points": [_click(1)]}
    base = units(first)
    assert len(set(base)) == 1  # every segment reads frame 1 alone: one unit for all
    # a correction on frame 31: frames 16.. are nearer to it, frames ..15 still to frame 1
    last = {"frame": 31, "points": [_click(31)]}
    corrected = units(first, last)
    assert corrected[:2] == base[:2] and corrected[2] != base[2] and corrected[3] != base[3]
    # another click on frame 31 changes the segments that read frame 31, nothing else
    more = units(first, {**last, "points": [_click(31), {"x": 3, "y": 3, "label": 0}]})
    assert more[:2] == base[:2] and more[2:] != corrected[2:]
    # changing frame 1's clicks changes segments 0 to 2 (frame 16 is as far from frame 31 as
    # from frame 1, and a tie goes to the earlier one), not segment 3
    moved = units({**first, "points": [_click(1), {"x": 9, "y": 9, "label": 0}]}, last)
    assert moved[3] == corrected[3] and all(moved[k] != corrected[k] for k in range(3))
    # removing the correction brings back the first units: still in the cache
    assert units(first) == base
    # a parameter every frame reads changes every segment
    assert set(Render.create(asset, "roto", _params(first, every=2)).units).isdisjoint(base)


def _mattes(
    local: tuple[Asset, AssetDir], params: dict[str, Any], order: list[int]
) -> dict[int, np.ndarray]:
    asset, adir = local
    effect = registry.get("roto")
    render = Render.create(asset, "roto", params)
    out = {}
    with SegmentPipeline(asset, adir, effect, effect.load(), render.effect_params()) as pipeline:
        for k in order:
            out[k] = pipeline.render(k).bands["matte"]
    return out


def test_the_matte_follows_the_subject_in_every_segment_whatever_the_order(
    local: tuple[Asset, AssetDir],
) -> None:
    params = _params({"frame": 2, "points": [_click(2)]}, feather=0)
    forwards = _mattes(local, params, [0, 3])
    backwards = _mattes(local, params, [3, 0])  # a fresh runner, the other order
    for k in (0, 3):
        assert np.array_equal(forwards[k], backwards[k])
        for j, matte in enumerate(forwards[k]):
            i = 8 * k + j
            # segment 3 never sees frame 2's mask: it found the disc again by its looks
            assert _iou(matte > 127, _truth(i)) > 0.8, (i, _iou(matte > 127, _truth(i)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # a segment of roto takes seconds on a CPU: a request waits for it
    config = ServeConfig(
        data_dir=tmp_path_factory.mktemp("roto-serve"), workers=1, segment_wait_s=120
    )
    with serve(config) as running:
        yield running


def test_a_correction_re_renders_only_the_segments_it_changes(server: Running, clip: Path) -> None:
    with server.client() as c, clip.open("rb") as f:
        r = c.post("/api/assets", files={"file": ("disc.mp4", f, "video/mp4")})
        assert r.status_code == 201, r.text
        asset = r.json()["id"]

        def render(*prompts: dict[str, Any]) -> dict[str, Any]:
            r = c.post(
                "/api/renders", json={"asset": asset, "effect": "roto", "params": _params(*prompts)}
            )
            assert r.status_code == 201, r.text
            body: dict[str, Any] = r.json()
            return body

        def segments(render_id: str) -> list[dict[str, Any]]:
            r = c.get(f"/api/renders/{render_id}")
            assert r.status_code == 200, r.text
            out: list[dict[str, Any]] = r.json()["segments"]
            return out

        first = render({"frame": 1, "points": [_click(1)]})
        # on the annotated frame, the render shows the mask the click showed in the editor
        r = c.post(f"/api/assets/{asset}/frames/1/mask", json={"points": [_click(1)]})
        assert r.status_code == 200, r.text
        clicked = _png(base64.b64decode(r.json()["png"]), cv2.IMREAD_GRAYSCALE) > 0
        r = c.get(f"/api/renders/{first['id']}/frames/1.png")
        assert r.status_code == 200, r.text
        green = np.all(_png(r.content, cv2.IMREAD_COLOR)[..., ::-1] == GREEN, axis=2)
        assert _iou(clicked, _truth(1)) > 0.9 and np.array_equal(green, ~clicked)
        for k in range(4):  # a viewer watches it all
            r = c.get(f"/api/renders/{first['id']}/stacked/{k}.m4s")
            assert r.status_code == 200, r.text
        assert [s["state"] for s in segments(first["id"])] == ["ready"] * 4
        second = render({"frame": 1, "points": [_click(1)]}, {"frame": 31, "points": [_click(31)]})
        states = segments(second["id"])
        # the first two segments are the first render's bytes, ready without any work
        assert [s["state"] for s in states[:2]] == ["ready", "ready"]
        assert [s["unit"] for s in states[:2]] == [s["unit"] for s in segments(first["id"])[:2]]
        assert all(s["state"] != "ready" for s in states[2:])
        r = c.get(f"/api/renders/{second['id']}/stacked/3.m4s")
        assert r.status_code == 200, r.text
        assert segments(second["id"])[3]["state"] == "ready"
