"""Bad input is refused with the right error and one clear line, never a traceback."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from playhead.cli import main
from playhead.effects import registry
from playhead.errors import (
    InvalidMediaError,
    InvalidParamsError,
    MediaTooLargeError,
    PlayheadError,
    UnknownEffectError,
    UnsupportedError,
)
from playhead.media.ingest import IngestOptions, ingest
from playhead.media.probe import Limits, probe
from playhead.media.testsrc import barcode_frame, make_barcode_video

# --- makers of bad files ----------------------------------------------------------------------


def text_as_mp4(d: Path) -> Path:
    path = d / "notes.mp4"
    path.write_text("This is not a video, whatever its name says.\n" * 20)
    return path


def empty_file(d: Path) -> Path:
    path = d / "empty.mp4"
    path.write_bytes(b"")
    return path


def missing_file(d: Path) -> Path:
    return d / "does-not-exist.mp4"


def _encode_mp4(path: Path, frames: int, options: dict[str, str]) -> Path:
    with av.open(str(path), "w", format="mp4", options=options) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(barcode_frame(i, 160, 120), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut-" + path.name)
    cut.write_bytes(data[: len(data) // 2])
    return cut


def truncated_moov_at_end(d: Path) -> Path:
    """An ordinary mp4 (moov after mdat) cut in half: the index is gone."""
    return _cut_in_half(_encode_mp4(d / "plain.mp4", 60, {}))


def truncated_faststart(d: Path) -> Path:
    """A faststart mp4 (moov first) cut in half: the index promises frames the file lacks."""
    return _cut_in_half(_encode_mp4(d / "faststart.mp4", 60, {"movflags": "+faststart"}))


def zero_frames(d: Path) -> Path:
    """An mp4 whose video track exists (fragmented: the moov is written up front) but is empty."""
    path = d / "zero.mp4"
    with av.open(
        str(path), "w", format="mp4", options={"movflags": "empty_moov+frag_keyframe"}
    ) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        out.start_encoding()
    return path


def zero_frames_plain(d: Path) -> Path:
    """A plain mp4 closed without a frame: the muxer leaves the empty track out altogether."""
    path = d / "zero-plain.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        out.start_encoding()
    return path


def audio_m4a(d: Path) -> Path:
    path = d / "tone.m4a"
    rate = 44100
    t = np.arange(rate // 2) / rate
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=rate)
        stream.layout = "mono"
        for start in range(0, tone.shape[1] - 1024, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(tone[:, start : start + 1024]), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def audio_wav(d: Path) -> Path:
    path = d / "click.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def text_as_txt(d: Path) -> Path:
    """FFmpeg's tty demuxer would render it as a 5-frame "video" of text."""
    path = d / "notes.txt"
    path.write_text("Shot list: open on the harbour, then the interview.\n" * 30)
    return path


def playlist_of_a_local_file(d: Path) -> Path:
    """An HLS playlist naming a file on the server: FFmpeg's hls demuxer would read it."""
    secret = make_barcode_video(d / "private-segment.ts", 10, Fraction(30), (160, 120))
    path = d / "clip.m3u8"
    path.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\nfile:{secret}\n#EXT-X-ENDLIST\n"
    )
    return path


def concat_list(d: Path) -> Path:
    secret = make_barcode_video(d / "private.mp4", 10, Fraction(30), (160, 120))
    path = d / "list.ffconcat"
    path.write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
    return path


MEDIA_CASES: list[tuple[Callable[[Path], Path], type[PlayheadError], str]] = [
    (text_as_txt, InvalidMediaError, "not a video container we accept"),
    (playlist_of_a_local_file, InvalidMediaError, "not a video container we accept"),
    (concat_list, InvalidMediaError, "not a video container we accept"),
    (text_as_mp4, InvalidMediaError, "not a media file"),
    (empty_file, InvalidMediaError, "empty"),
    (missing_file, InvalidMediaError, "no such file"),
    (truncated_moov_at_end, InvalidMediaError, "not a media file"),
    (truncated_faststart, InvalidMediaError, "truncated"),
    (zero_frames, InvalidMediaError, "no frames"),
    (zero_frames_plain, InvalidMediaError, "no video stream"),
    (audio_m4a, InvalidMediaError, "no video stream (streams: audio)"),
    (audio_wav, InvalidMediaError, "no video stream (streams: audio)"),
]
MEDIA_IDS = [maker.__name__ for maker, _, _ in MEDIA_CASES]


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad")


def render_argv(data: Path, src: Path, effect: str, out: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "render", str(src), "-e", effect, "-o", str(out), *extra]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("playhead: ")
    assert "internal error" not in lines[0]
    assert fragment in lines[0]


def no_assets(data: Path) -> bool:
    return not any((data / "assets").glob("*/asset.json"))


# --- bad media --------------------------------------------------------------------------------


def test_the_good_file_is_accepted(bad_dir: Path) -> None:
    """The same recipe without the damage passes: the failures below are about the damage."""
    info = probe(_encode_mp4(bad_dir / "good.mp4", 60, {"movflags": "+faststart"}))
    assert (info.width, info.height, info.frames, info.fps) == (160, 120, 60, Fraction(30))


@pytest.mark.parametrize("ext", [".avi", ".ts", ".mkv", ".mov", ".flv"])
def test_the_usual_containers_are_accepted(media_dir: Path, ext: str) -> None:
    """The container allow-list lets the formats cameras and editors write through."""
    info = probe(make_barcode_video(media_dir / f"allowed{ext}", 12, Fraction(30), (160, 120)))
    assert (info.width, info.height, info.frames) == (160, 120, 12)


@pytest.mark.parametrize(("maker", "error", "fragment"), MEDIA_CASES, ids=MEDIA_IDS)
def test_probe_rejects(
    bad_dir: Path, maker: Callable[[Path], Path], error: type[PlayheadError], fragment: str
) -> None:
    path = maker(bad_dir)
    with pytest.raises(error) as caught:
        probe(path)
    assert fragment in caught.value.message
    assert path.name in caught.value.message
    assert caught.value.status == 415 and caught.value.code == "invalid_media"
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(("maker", "error", "fragment"), MEDIA_CASES, ids=MEDIA_IDS)
def test_ingest_rejects(
    bad_dir: Path,
    tmp_path: Path,
    maker: Callable[[Path], Path],
    error: type[PlayheadError],
    fragment: str,
) -> None:
    path = maker(bad_dir)
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        ingest(path, tmp_path)
    assert no_assets(tmp_path)


@pytest.mark.parametrize(("maker", "error", "fragment"), MEDIA_CASES, ids=MEDIA_IDS)
def test_cli_ingest_rejects(
    bad_dir: Path,
    tmp_path: Path,
    maker: Callable[[Path], Path],
    error: type[PlayheadError],
    fragment: str,
) -> None:
    code, out, err = run_cli(["--data", str(tmp_path), "ingest", str(maker(bad_dir))])
    assert_one_line_error(code, err, fragment)
    assert out == ""
    assert no_assets(tmp_path)


@pytest.mark.parametrize(("maker", "error", "fragment"), MEDIA_CASES[:4], ids=MEDIA_IDS[:4])
def test_cli_render_rejects(
    bad_dir: Path,
    tmp_path: Path,
    maker: Callable[[Path], Path],
    error: type[PlayheadError],
    fragment: str,
) -> None:
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(render_argv(tmp_path, maker(bad_dir), "passthrough", out))
    assert_one_line_error(code, err, fragment)
    assert not out.exists() and not out.with_name(out.name + ".part").exists()


@pytest.mark.parametrize(("ext", "codec"), [("mkv", "libx264"), ("webm", "libvpx-vp9")])
def test_truncated_matroska_is_refused(media_dir: Path, ext: str, codec: str) -> None:
    """Matroska declares no frame count, but it does declare its duration (4 s here).

    Cut in half, the file still opens and demuxes to about half its frames; it must be refused
    as truncated like a cut mp4, not silently ingested as a 2 s clip.
    """
    whole = make_barcode_video(
        media_dir / f"bad-whole.{ext}", 120, Fraction(30), (160, 120), codec=codec
    )
    assert probe(whole).frames == 120
    cut = _cut_in_half(whole)
    with pytest.raises(InvalidMediaError, match="truncated"):
        probe(cut)


# --- limits -----------------------------------------------------------------------------------


LIMIT_CASES: list[tuple[Limits, str]] = [
    (Limits(max_side=200), "320x240 is over the 200px limit"),
    (Limits(max_duration_s=2.0), "over the 2 s limit"),
    (Limits(max_bytes=1000), "kB is over the 1.0 kB limit"),
]
LIMIT_IDS = ["side", "duration", "bytes"]


@pytest.mark.parametrize(("limits", "fragment"), LIMIT_CASES, ids=LIMIT_IDS)
def test_probe_limits(barcode_path: Path, limits: Limits, fragment: str) -> None:
    assert barcode_path.stat().st_size > 1000  # 320x240, 95 frames (3.2 s)
    with pytest.raises(MediaTooLargeError) as caught:
        probe(barcode_path, limits)
    assert fragment in caught.value.message
    assert caught.value.status == 413 and caught.value.code == "media_too_large"
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("limits", "fragment"), LIMIT_CASES, ids=LIMIT_IDS)
def test_ingest_limits(barcode_path: Path, tmp_path: Path, limits: Limits, fragment: str) -> None:
    with pytest.raises(MediaTooLargeError, match=fragment):
        ingest(barcode_path, tmp_path, IngestOptions(limits=limits))
    assert no_assets(tmp_path)


def test_limits_at_the_boundary_pass(barcode_path: Path) -> None:
    size = barcode_path.stat().st_size
    info = probe(barcode_path, Limits(max_side=320, max_duration_s=95 / 30, max_bytes=size))
    assert info.frames == 95 and info.size_bytes == size


def test_dimension_limit_before_any_decoding(media_dir: Path) -> None:
    """A big picture is refused from its header alone (no frame counting needed)."""
    src = make_barcode_video(media_dir / "bad-wide.mp4", 3, Fraction(30), (640, 160))
    with pytest.raises(MediaTooLargeError, match="640x160"):
        probe(src, Limits(max_side=639), count_frames=False)


# --- effects and parameters -------------------------------------------------------------------


def test_unknown_effect() -> None:
    with pytest.raises(UnknownEffectError) as caught:
        registry.get("sparkle")
    message = str(caught.value)
    assert message.startswith("unknown effect 'sparkle'")  # not KeyError's quoted repr
    assert "person" in message and "passthrough" in message
    assert caught.value.status == 422
    assert isinstance(caught.value, KeyError)


PARAM_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("person", {"threshold": "high"}, "threshold"),  # wrong type
    ("person", {"threshold": 2}, "threshold"),  # above range
    ("person", {"threshold": -0.1}, "threshold"),  # below range
    ("person", {"model": "huge"}, "model"),  # not one of the choices
    ("person", {"background": "purple"}, "background"),  # fails the pattern
    ("person", {"bogus": 1}, "bogus"),  # unknown name
    ("edges", {"thickness": 1.5}, "thickness"),  # int wanted
    ("edges", {"thickness": 10}, "thickness"),
    ("cost", {"ms_per_frame": -1}, "ms_per_frame"),
    ("passthrough", {"anything": True}, "anything"),  # even an effect with no params
]
PARAM_IDS = [f"{e}-{next(iter(p))}-{p[next(iter(p))]}" for e, p, _ in PARAM_CASES]


@pytest.mark.parametrize(("effect", "raw", "name"), PARAM_CASES, ids=PARAM_IDS)
def test_bad_params(effect: str, raw: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidParamsError) as caught:
        registry.parse_params(registry.get(effect), raw)
    message = caught.value.message
    assert f"parameter {name!r}" in message
    assert message.startswith(f"{effect}: ")
    assert caught.value.status == 422 and "\n" not in message


def test_every_bad_param_is_named() -> None:
    with pytest.raises(InvalidParamsError) as caught:
        registry.parse_params(registry.get("person"), {"threshold": 5, "feather": -1, "x": 0})
    for name in ("threshold", "feather", "x"):
        assert f"parameter {name!r}" in caught.value.message


def test_good_params_still_parse() -> None:
    params = registry.parse_params(registry.get("person"), {"threshold": "0.7", "model": "general"})
    assert registry.canonical_params(params)["threshold"] == 0.7


@pytest.mark.parametrize("pair", ["threshold", "=0.5", ""])
def test_param_without_equals(pair: str) -> None:
    with pytest.raises(InvalidParamsError, match="expected key=value"):
        registry.parse_cli_params([pair])


def test_cli_params_are_json_where_they_parse() -> None:
    assert registry.parse_cli_params(["a=1", "b=x", "c=[1]", "d=a=b"]) == {
        "a": 1,
        "b": "x",
        "c": [1],
        "d": "a=b",
    }


CLI_CASES: list[tuple[list[str], str]] = [
    (["-e", "sparkle"], "unknown effect 'sparkle'"),
    (["-e", "person", "-p", "threshold=high"], "'threshold'"),
    (["-e", "person", "-p", "threshold=2"], "'threshold'"),
    (["-e", "person", "-p", "bogus=1"], "'bogus'"),
    (["-e", "edges", "-p", "thickness=1.5"], "'thickness'"),
    (["-e", "person", "-p", "threshold"], "expected key=value"),
    (["-e", "person", "-p", "=1"], "expected key=value"),
    (["-e", "flow", "--format", "png-matte"], "makes no matte"),
]


@pytest.mark.parametrize(("args", "fragment"), CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_cli_render_bad_request(
    barcode_path: Path, tmp_path: Path, args: list[str], fragment: str
) -> None:
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(
        ["--data", str(tmp_path), "render", str(barcode_path), "-o", str(out), *args]
    )
    assert_one_line_error(code, err, fragment)
    assert not out.exists()
    assert not (tmp_path / "assets").exists()  # refused before any ingest work


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("out.avi", "cannot tell the format"), ("missing-dir/out.mp4", "does not exist")],
)
def test_cli_bad_output(barcode_path: Path, tmp_path: Path, name: str, fragment: str) -> None:
    code, _, err = run_cli(render_argv(tmp_path, barcode_path, "passthrough", tmp_path / name))
    assert_one_line_error(code, err, fragment)


def test_error_classes_are_builtin_compatible() -> None:
    assert issubclass(InvalidMediaError, ValueError)
    assert issubclass(MediaTooLargeError, ValueError)
    assert issubclass(InvalidParamsError, ValueError)
    assert issubclass(UnsupportedError, ValueError)
    err = InvalidParamsError("person: parameter 'threshold': too big")
    assert err.to_json() == {
        "error": {"code": "invalid_params", "message": "person: parameter 'threshold': too big"}
    }


# --- fleet settings -----------------------------------------------------------------------------


def test_fleet_settings_come_from_flags_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from playhead.cli import _parser

    args = _parser().parse_args(["serve", "--data", str(tmp_path), "--workers", "0"])
    assert (args.data, args.redis, args.store) == (tmp_path, None, None)
    monkeypatch.setenv("PLAYHEAD_REDIS", "redis://r:6379/0")
    monkeypatch.setenv("PLAYHEAD_STORE", "s3://bucket/prefix")
    args = _parser().parse_args(["worker"])  # required, and given by the environment
    assert (args.redis, args.store) == ("redis://r:6379/0", "s3://bucket/prefix")
    args = _parser().parse_args(["worker", "--redis", "redis://other:1/2"])
    assert args.redis == "redis://other:1/2"


def test_a_worker_without_a_queue_or_a_replica_without_a_shared_store_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PLAYHEAD_REDIS", raising=False)
    monkeypatch.delenv("PLAYHEAD_STORE", raising=False)
    with pytest.raises(SystemExit) as exit_:
        run_cli(["worker", "--store", "file:///tmp/x"])
    assert exit_.value.code == 2  # argparse names the missing --redis
    code, _, err = run_cli(["serve", "--data", str(tmp_path), "--redis", "redis://r:1/0"])
    assert_one_line_error(code, err, "--store")
    code, _, err = run_cli(["serve", "--data", str(tmp_path), "--workers", "-1"])
    assert_one_line_error(code, err, "--workers")
