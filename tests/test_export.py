"""Every export format through the command line, decoded back and checked."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from playhead.cli import main
from playhead.effects import registry
from playhead.media.export import EXTENSIONS, FORMATS, NEEDS_MATTE, ExportFormat
from playhead.media.fmp4 import boxes
from playhead.media.testsrc import decode_all, read_barcode

CLIP_FRAMES = 45  # two segments (30 + 15) of carphone: the pipeline crosses a boundary
W, H = 176, 144
EFFECT_ARGS: dict[str, list[str]] = {
    "person": [],
    "faces": [],
    "edges": [],
    "flow": [],
    "passthrough": [],
    "cost": ["--param", "ms_per_frame=1"],
}


@dataclass(frozen=True)
class Result:
    code: int
    err: str
    path: Path


Render = Callable[[str, ExportFormat], Result]


def render_argv(data: Path, src: Path, effect: str, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "render", str(src), "-e", effect, "-o", str(out), *extra]


def run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


@pytest.fixture(scope="module")
def carphone_clip(carphone_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 45 frames of carphone, near-losslessly re-encoded: keeps every render quick."""
    path = tmp_path_factory.mktemp("clip") / "carphone45.mp4"
    rate = Fraction(30000, 1001)
    with av.open(str(carphone_path)) as src, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options={"crf": "8"})
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.time_base = 1 / rate
        for i, frame in enumerate(src.decode(video=0)):
            if i == CLIP_FRAMES:
                break
            f = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            f.pts, f.time_base = i, 1 / rate
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def clip_rgb(carphone_clip: Path) -> np.ndarray:
    return np.stack([f.to_ndarray(format="rgb24") for f in decode_all(carphone_clip)])


@pytest.fixture(scope="module")
def render(carphone_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Render:
    """Render (effect, format) of the clip once per module, through ``playhead render``."""
    root = tmp_path_factory.mktemp("exports")
    done: dict[tuple[str, ExportFormat], Result] = {}

    def go(effect: str, fmt: ExportFormat) -> Result:
        if (effect, fmt) not in done:
            out = root / f"{effect}{EXTENSIONS[fmt]}"
            argv = render_argv(root / "data", carphone_clip, effect, out, *EFFECT_ARGS[effect])
            code, err = run_cli(argv)
            done[effect, fmt] = Result(code, err, out)
        return done[effect, fmt]

    return go


def alpha_regions(alpha: np.ndarray) -> tuple[float, float]:
    """Mean alpha in the person region (centre-bottom) and in the two top corners."""
    h, w = alpha.shape[-2:]
    centre = alpha[..., int(h * 0.75) :, int(w * 0.35) : int(w * 0.65)]
    corners = np.concatenate(
        [alpha[..., : h // 6, : w // 6].ravel(), alpha[..., : h // 6, -w // 6 :].ravel()]
    )
    return float(centre.mean()), float(corners.mean())


def assert_person_alpha(alpha: np.ndarray, top: float) -> None:
    """``alpha`` is ``[N,H,W]`` on a 0..top scale."""
    assert alpha.shape == (CLIP_FRAMES, H, W)
    centre, corners = alpha_regions(alpha)
    assert centre > 0.85 * top, f"person region alpha {centre}"
    assert corners < 0.1 * top, f"top corners alpha {corners}"
    for a in alpha:  # every frame, not just on average
        c, k = alpha_regions(a)
        assert c > 0.6 * top and k < 0.25 * top


def png_mattes(blobs: list[bytes]) -> np.ndarray:
    out = []
    for blob in blobs:
        assert blob[:8] == b"\x89PNG\r\n\x1a\n"
        assert blob[25] == 0, "PNG colour type is not grayscale"
        m = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)
        assert m is not None and m.dtype == np.uint8 and m.shape == (H, W)
        out.append(m)
    return np.stack(out)


# --- mp4 --------------------------------------------------------------------------------------


def test_mp4_passthrough_keeps_every_frame(barcode_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "barcode.mp4"
    code, err = run_cli(render_argv(tmp_path / "data", barcode_path, "passthrough", out))
    assert code == 0, err
    assert "wrote" in err and "(mp4): 95 frames" in err
    assert not out.with_name(out.name + ".part").exists()
    frames = decode_all(out)
    assert [read_barcode(f.to_ndarray(format="rgb24")) for f in frames] == list(range(95))
    times = []
    for f in frames:
        assert f.pts is not None and f.time_base is not None
        times.append(f.pts * Fraction(f.time_base))
    assert times == [Fraction(i, 30) for i in range(95)]
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.video[0].average_rate == 30
    kinds = [t for t, _, _ in boxes(out.read_bytes())]
    assert kinds.index("moov") < kinds.index("mdat"), "not faststart"


def test_mp4_person_is_composited(render: Render, clip_rgb: np.ndarray) -> None:
    r = render("person", "mp4")
    assert r.code == 0, r.err
    rgb = np.stack([f.to_ndarray(format="rgb24") for f in decode_all(r.path)])
    assert rgb.shape == clip_rgb.shape
    # the default background is chroma green: the top corners turn green, the person stays
    corner = rgb[:, : H // 6, : W // 6].reshape(-1, 3).mean(axis=0)
    assert corner[1] > 140 and corner[0] < 60 and corner[2] < 100, corner
    centre = (slice(None), slice(int(H * 0.75), None), slice(int(W * 0.35), int(W * 0.65)))
    diff = np.abs(rgb[centre].astype(int) - clip_rgb[centre].astype(int)).mean()
    assert diff < 8


# --- mov-alpha --------------------------------------------------------------------------------


def test_mov_alpha_person(render: Render, clip_rgb: np.ndarray) -> None:
    r = render("person", "mov-alpha")
    assert r.code == 0, r.err
    frames = decode_all(r.path)
    assert len(frames) == CLIP_FRAMES
    # written as yuva444p10le; FFmpeg's ProRes decoder hands 4444 back as 12-bit
    assert {f.format.name for f in frames} <= {"yuva444p10le", "yuva444p12le"}
    with av.open(str(r.path)) as c:
        ctx = c.streams.video[0].codec_context
        assert ctx.name == "prores" and ctx.profile is not None and "4444" in ctx.profile
    rgba = np.stack([f.to_ndarray(format="rgba") for f in frames])
    assert_person_alpha(rgba[..., 3], 255)
    # the colour under the alpha is the source picture (not the green composite)
    diff = np.abs(rgba[..., :3].astype(int) - clip_rgb.astype(int)).mean()
    assert diff < 4, diff


def test_mov_alpha_without_matte_is_opaque(render: Render) -> None:
    r = render("passthrough", "mov-alpha")
    assert r.code == 0, r.err
    rgba = np.stack([f.to_ndarray(format="rgba") for f in decode_all(r.path)])
    assert rgba.shape == (CLIP_FRAMES, H, W, 4)
    assert rgba[..., 3].min() >= 250


# --- webm-alpha -------------------------------------------------------------------------------


def test_webm_alpha_person(render: Render) -> None:
    r = render("person", "webm-alpha")
    assert r.code == 0, r.err
    frames = decode_all(r.path, codec="libvpx-vp9")
    assert len(frames) == CLIP_FRAMES
    assert all(f.format.name == "yuva420p" for f in frames)
    rgba = np.stack([f.to_ndarray(format="rgba") for f in frames])
    assert_person_alpha(rgba[..., 3], 255)


def test_webm_native_decoder_drops_alpha(render: Render) -> None:
    """Why the libvpx decoder is needed: FFmpeg's own vp9 decoder gives no alpha plane."""
    r = render("person", "webm-alpha")
    assert r.code == 0, r.err
    frames = decode_all(r.path)
    assert len(frames) == CLIP_FRAMES
    assert {f.format.name for f in frames} == {"yuv420p"}


# --- png-matte --------------------------------------------------------------------------------


def test_png_matte_zip(render: Render) -> None:
    r = render("person", "png-matte")
    assert r.code == 0, r.err
    assert r.path.suffix == ".zip"
    with zipfile.ZipFile(r.path) as z:
        names = z.namelist()
        assert names == [f"matte_{i:06d}.png" for i in range(CLIP_FRAMES)]
        mattes = png_mattes([z.read(n) for n in names])
    assert_person_alpha(mattes, 255)


def test_png_matte_directory(carphone_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "mattes"
    code, err = run_cli(
        render_argv(tmp_path / "data", carphone_clip, "person", out, "--format", "png-matte")
    )
    assert code == 0, err
    assert out.is_dir()
    files = sorted(out.iterdir())
    assert [p.name for p in files] == [f"matte_{i:06d}.png" for i in range(CLIP_FRAMES)]
    assert_person_alpha(png_mattes([p.read_bytes() for p in files]), 255)
    assert not out.with_name(out.name + ".part").exists()


def test_png_matte_never_deletes_other_files(carphone_clip: Path, tmp_path: Path) -> None:
    """Exporting into an existing directory must not wipe what was already there."""
    out = tmp_path / "footage"
    out.mkdir()
    (out / "thesis.txt").write_text("months of work")
    code, err = run_cli(
        render_argv(tmp_path / "data", carphone_clip, "person", out, "--format", "png-matte")
    )
    assert (out / "thesis.txt").is_file(), "the export deleted a file it did not write"
    assert (out / "thesis.txt").read_text() == "months of work"
    if code != 0:  # refusing is fine too, with one clear line
        assert err.startswith("playhead: ") and len(err.strip().splitlines()) == 1


def test_png_matte_needs_a_matte(
    carphone_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nothing.zip"
    code = main(render_argv(tmp_path / "data", carphone_clip, "passthrough", out))
    captured = capsys.readouterr()
    assert code != 0
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("playhead:")
    assert "passthrough" in lines[0] and "makes no matte" in lines[0]
    assert "person" in lines[0]  # it names the effects that do make one
    assert "Traceback" not in captured.err
    assert not out.exists() and not out.with_name(out.name + ".part").exists()


# --- every effect, every format it supports ------------------------------------------------------


def _supported() -> list[tuple[str, ExportFormat]]:
    effects = registry.effects()
    return [
        (name, fmt)
        for name in EFFECT_ARGS
        for fmt in FORMATS
        if fmt not in NEEDS_MATTE or "matte" in effects[name].bands
    ]


def count_frames(path: Path, fmt: ExportFormat) -> int:
    if fmt == "png-matte":
        with zipfile.ZipFile(path) as z:
            return len(png_mattes([z.read(n) for n in z.namelist()]))
    frames = decode_all(path)
    assert all((f.width, f.height) == (W, H) for f in frames)
    return len(frames)


def test_support_matrix_is_complete() -> None:
    pairs = _supported()
    assert ("person", "png-matte") in pairs and ("faces", "png-matte") in pairs
    assert ("flow", "png-matte") not in pairs and ("passthrough", "png-matte") not in pairs
    assert len(pairs) == 6 * 3 + 3


@pytest.mark.parametrize(("effect", "fmt"), _supported(), ids=lambda v: str(v))
def test_every_effect_renders_every_format(render: Render, effect: str, fmt: ExportFormat) -> None:
    r = render(effect, fmt)
    assert r.code == 0, r.err
    assert r.path.exists() and not r.path.with_name(r.path.name + ".part").exists()
    assert f"{CLIP_FRAMES} frames" in r.err
    assert count_frames(r.path, fmt) == CLIP_FRAMES
