"""Each effect on input with a known answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from tiny_onnx import tiny_model

from playhead.effects import registry
from playhead.effects.base import Context, Effect, EffectParams, Frames, variants_of
from playhead.errors import InvalidParamsError, UnknownEffectError

CTX = Context(first_frame=0, fps=30.0)


def _run(name: str, frames: Frames, context: Context = CTX, **raw: Any) -> dict[str, Any]:
    effect = registry.get(name)
    params = registry.parse_params(effect, raw)
    runner = effect.load()
    bands = runner.run(frames, params, context)
    bands["composite"] = runner.composite(frames, bands, params)
    return bands


@pytest.fixture(scope="module")
def carphone(carphone_path: Path) -> Frames:
    with av.open(str(carphone_path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)][:16])


def test_every_builtin_satisfies_the_protocol() -> None:
    for name in ("person", "faces", "edges", "flow", "onnx", "passthrough", "cost"):
        effect: Effect = registry.get(name)
        d = registry.describe(effect)
        assert d["name"] == name and d["params"]["type"] == "object"
        assert "composite" in variants_of(effect)
        assert ("stacked" in d["variants"]) == ("matte" in effect.bands)


def test_person_matte_covers_the_person_not_the_corners(carphone: Frames) -> None:
    bands = _run("person", carphone)
    matte = bands["matte"]
    assert matte.shape == carphone.shape[:3] and matte.dtype == np.uint8
    h, w = matte.shape[1:]
    # carphone: a man's head and shoulders fill the centre and bottom; the car's roof is above
    torso = matte[:, int(h * 0.75) :, int(w * 0.4) : int(w * 0.6)]
    face = matte[:, int(h * 0.35) : int(h * 0.55), int(w * 0.4) : int(w * 0.6)]
    corners = np.concatenate([matte[:, : h // 8, : w // 8], matte[:, : h // 8, -w // 8 :]], axis=1)
    assert torso.mean() > 200 and face.mean() > 200
    assert corners.mean() < 30
    # the green background replaces the corners and leaves the person alone
    comp = bands["composite"]
    assert np.abs(comp[:, : h // 8, : w // 8].astype(int) - (0, 177, 64)).mean() < 20
    assert (
        np.abs(
            comp[:, int(h * 0.8) :, w // 2].astype(int) - carphone[:, int(h * 0.8) :, w // 2]
        ).mean()
        < 5
    )


def test_person_smoothing_uses_the_previous_frame(carphone: Frames) -> None:
    plain = _run("person", carphone[1:2], Context(1, 30.0))["matte"]
    smooth = _run("person", carphone[1:2], Context(1, 30.0, previous=carphone[:1]), smoothing=0.9)[
        "matte"
    ]
    previous = _run("person", carphone[:1])["matte"]
    # 90 % of the previous frame: the smoothed matte is much closer to it than the plain one
    assert (
        np.abs(smooth.astype(int) - previous).mean() < np.abs(plain.astype(int) - previous).mean()
    )


def test_person_backgrounds(carphone: Frames) -> None:
    for background, corner in (("#ff0000", (255, 0, 0)), ("transparent", (0, 0, 0))):
        comp = _run("person", carphone[:2], background=background)["composite"]
        assert np.abs(comp[:, :10, :10].astype(int) - corner).mean() < 20
    untouched = _run("person", carphone[:2], background="none")["composite"]
    assert np.array_equal(untouched, carphone[:2])
    blurred = _run("person", carphone[:2], background="blur")["composite"]
    assert not np.array_equal(blurred[:, :20, :20], carphone[:2, :20, :20])


def test_flow_of_a_translated_pattern_is_the_translation() -> None:
    rng = np.random.default_rng(0)
    noise = (rng.random((200, 260)) * 255).astype(np.uint8)
    texture = cv2.GaussianBlur(noise, (0, 0), 2)
    base = np.repeat(texture[..., None], 3, axis=2)
    dx, dy = 3, 2
    frames: Frames = np.stack([np.roll(base, (dy * i, dx * i), axis=(0, 1)) for i in range(4)])
    # frame 0 is the context (decoded by the segment itself); frames 1..3 are the batch
    bands = _run("flow", frames[1:], Context(1, 30.0, previous=frames[:1]))
    flow = bands["flow"][:, 40:-40, 40:-40]
    assert abs(float(np.median(flow[..., 0])) - dx) < 0.25
    assert abs(float(np.median(flow[..., 1])) - dy) < 0.25
    assert bands["rgb"].shape == frames[1:].shape
    # without context the first frame has no motion
    first = _run("flow", frames[:1])["flow"]
    assert not first.any()


def test_edges_find_a_square() -> None:
    frame = np.zeros((1, 64, 64, 3), np.uint8)
    frame[0, 16:48, 16:48] = 255
    bands = _run("edges", frame, color="#ff0000")
    matte = bands["matte"][0]
    row = 15 + int(np.argmax(matte[15:17, 30]))  # Canny marks one side of the step
    assert matte[row, 30] == 255 and matte[32, 32] == 0 and matte[2, 2] == 0
    assert tuple(bands["rgb"][0, row, 30]) == (255, 0, 0)
    with pytest.raises(InvalidParamsError, match="high"):
        registry.parse_params(registry.get("edges"), {"low": 200, "high": 100})


def test_onnx_matte_and_rgb_models(tmp_path: Path) -> None:
    frames = np.zeros((3, 48, 64, 3), np.uint8)
    frames[:, :, :32, 0] = 255  # left half red
    matte_model = tiny_model(tmp_path / "matte.onnx", "matte")
    matte = _run("onnx", frames, model=str(matte_model))["matte"]
    assert matte.shape == (3, 48, 64)
    assert matte[:, :, :28].min() > 240 and matte[:, :, 36:].max() < 15

    rgb_model = tiny_model(tmp_path / "rgb.onnx", "rgb")
    out = _run("onnx", frames, model=str(rgb_model), output="rgb")
    assert np.abs(out["rgb"][:, 10, 10].astype(int) - (0, 255, 255)).max() <= 2
    assert np.abs(out["composite"][:, 10, 50].astype(int) - (255, 255, 255)).max() <= 2


def test_onnx_rejects_a_missing_model() -> None:
    with pytest.raises(InvalidParamsError, match="model"):
        registry.parse_params(registry.get("onnx"), {"model": "/nonexistent.onnx"})


def test_passthrough_and_cost_change_nothing() -> None:
    frames = np.random.default_rng(1).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    assert np.array_equal(_run("passthrough", frames)["composite"], frames)
    assert np.array_equal(_run("cost", frames, ms_per_frame=1)["composite"], frames)


@pytest.mark.parametrize(
    ("effect", "raw", "fragment"),
    [
        ("person", {"threshold": 2}, "threshold"),
        ("person", {"threshold": "high"}, "threshold"),
        ("person", {"thresold": 0.4}, "thresold"),
        ("person", {"background": "purple"}, "background"),
        ("faces", {"mode": "smudge"}, "mode"),
        ("edges", {"color": "red"}, "color"),
        ("cost", {"ms_per_frame": -1}, "ms_per_frame"),
        ("flow", {"max_magnitude": 0}, "max_magnitude"),
    ],
)
def test_params_are_validated_strictly(effect: str, raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidParamsError, match=fragment):
        registry.parse_params(registry.get(effect), raw)


def test_cli_values_parse_as_json_then_strings() -> None:
    parsed = registry.parse_cli_params(
        ["threshold=0.4", "background=#00ff00", "mean=[0.5,0.5,0.5]"]
    )
    assert parsed == {"threshold": 0.4, "background": "#00ff00", "mean": [0.5, 0.5, 0.5]}
    params: EffectParams = registry.parse_params(registry.get("person"), {"threshold": 0.4})
    assert registry.canonical_params(params)["threshold"] == 0.4


def test_unknown_effect_lists_the_known_ones() -> None:
    with pytest.raises(UnknownEffectError, match="person"):
        registry.get("sparkles")
