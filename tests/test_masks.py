"""Masks from clicks on a real server with the real SAM-style models: a click on a subject
gives its mask, an exclude click or a box refines it, a frame's embedding is computed once and
kept in the store, and bad clicks get a clear 4xx."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
import pytest
from av.video.stream import VideoStream
from fastapi import FastAPI

from playhead.server.config import ServeConfig
from playhead.server.embedded import Running, serve
from playhead.server.masks import embedding_key
from playhead.server.runtime import Runtime

W, H, FRAMES = 320, 192, 6


def _subject(i: int) -> np.ndarray:
    """Frame i's ground truth: an ellipse moving right, 255 inside."""
    mask = np.zeros((H, W), np.uint8)
    cv2.ellipse(mask, (110 + 12 * i, 96), (60, 40), 15, 0, 360, 255, -1)
    return mask


def _clip(path: Path) -> Path:
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        stream: VideoStream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "12"}
        for i in range(FRAMES):
            grass = np.clip(rng.normal((60, 150, 70), 18, (H, W, 3)), 0, 255).astype(np.uint8)
            grass[_subject(i) > 0] = (210, 60, 50)
            frame = av.VideoFrame.from_ndarray(grass, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with serve(ServeConfig(data_dir=tmp_path_factory.mktemp("masks"), workers=0)) as running:
        yield running


@pytest.fixture(scope="module")
def asset(server: Running, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    clip = _clip(tmp_path_factory.mktemp("clip") / "subject.mp4")
    with server.client() as c, clip.open("rb") as f:
        r = c.post("/api/assets", files={"file": ("subject.mp4", f, "video/mp4")})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _mask(server: Running, asset: dict[str, Any], n: int, body: dict[str, Any]) -> np.ndarray:
    with server.client() as c:
        r = c.post(f"/api/assets/{asset['id']}/frames/{n}/mask", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["width"], out["height"]) == (W, H) and 0 < out["score"] <= 1.5
    png = np.frombuffer(base64.b64decode(out["png"]), np.uint8)
    mask = cv2.imdecode(png, cv2.IMREAD_UNCHANGED)
    assert mask is not None and mask.shape == (H, W) and set(np.unique(mask)) <= {0, 255}
    return np.asarray(mask, np.uint8)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a > 0) & (b > 0)).sum() / max(1, ((a > 0) | (b > 0)).sum()))


def test_a_click_on_the_subject_gives_its_mask(server: Running, asset: dict[str, Any]) -> None:
    centre = {"x": 110 + 12 * 3, "y": 96, "label": 1}
    mask = _mask(server, asset, 3, {"points": [centre]})
    assert _iou(mask, _subject(3)) > 0.9
    assert _iou(mask, _subject(0)) < _iou(mask, _subject(3))  # frame 3's subject, not 0's
    boxed = _mask(server, asset, 3, {"points": [centre], "box": [40, 40, 230, 152]})
    assert _iou(boxed, _subject(3)) > 0.9
    # a click on the background with "include" is not the subject; with "exclude" beside an
    # include click, the subject stays
    grass = {"x": 20, "y": 20, "label": 1}
    assert _iou(_mask(server, asset, 3, {"points": [grass]}), _subject(3)) < 0.2
    refined = _mask(server, asset, 3, {"points": [centre, {**grass, "label": 0}]})
    assert _iou(refined, _subject(3)) > 0.9


def test_a_frames_embedding_is_computed_once_and_kept_in_the_store(
    server: Running, asset: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = cast(Runtime, cast(FastAPI, server.app).state.runtime)
    click = {"points": [{"x": 110 + 12 * 5, "y": 96, "label": 1}]}
    first = _mask(server, asset, 5, click)
    assert rt.store.exists(embedding_key(asset["id"], 5))
    sam = rt.masks._model()

    def no_more(rgb: np.ndarray) -> np.ndarray:
        raise AssertionError("the encoder ran again for a frame it had embedded")

    monkeypatch.setattr(sam, "embed", no_more)
    rt.masks.forget_asset(asset["id"])  # from the store now, as another replica would
    again = _mask(server, asset, 5, click)
    assert np.array_equal(first, again)  # the same pixels, first click or later
    assert _iou(_mask(server, asset, 5, {"points": [{"x": 30, "y": 30, "label": 1}]}), first) < 0.2


@pytest.mark.parametrize(
    ("frame", "body", "status", "says"),
    [
        (0, {"points": [{"x": W + 5, "y": 10, "label": 1}]}, 422, "outside"),
        (0, {"points": []}, 422, "at least one point"),
        (0, {"box": [100, 50, 90, 80]}, 422, "x0 < x1"),
        (0, {"points": [{"x": 1, "y": 1, "label": 2}]}, 422, "label"),
        (0, {"points": [{"x": 1, "y": 1}], "extra": 1}, 422, "extra"),
        (FRAMES, {"points": [{"x": 1, "y": 1, "label": 1}]}, 404, "outside"),
    ],
)
def test_bad_clicks_get_a_clear_error(
    server: Running,
    asset: dict[str, Any],
    frame: int,
    body: dict[str, Any],
    status: int,
    says: str,
) -> None:
    with server.client() as c:
        r = c.post(f"/api/assets/{asset['id']}/frames/{frame}/mask", json=body)
        assert r.status_code == status, r.text
        assert says in r.json()["error"]["message"].lower()
        assert c.get("/healthz").status_code == 200


def test_a_mask_for_an_unknown_asset_is_404(server: Running) -> None:
    with server.client() as c:
        r = c.post("/api/assets/nope/frames/0/mask", json={"points": [{"x": 1, "y": 1}]})
    assert r.status_code == 404
