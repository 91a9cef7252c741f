"""Ingest and frame-exact decode on real barcode media: every frame lands at its index."""

from __future__ import annotations

import itertools
import random
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from playhead.media.asset import Asset, AssetDir, FrameIndex
from playhead.media.decode import MezzanineReader
from playhead.media.ingest import IngestOptions, ingest
from playhead.media.testsrc import decode_all, make_barcode_video, read_barcode
from playhead.types import FrameRange


class CountingReader(MezzanineReader):
    """A real reader that also counts its seeks (to tell continuation from random access)."""

    seeks = 0

    def _seek(self, start: int) -> None:
        self.seeks += 1
        super()._seek(start)


def barcodes(frames: np.ndarray) -> list[int]:
    return [read_barcode(f) for f in frames]


def mezzanine_barcodes(adir: AssetDir) -> list[int]:
    return [read_barcode(f.to_ndarray(format="rgb24")) for f in decode_all(adir.mezzanine)]


def packet_keyframes(path: Path) -> list[int]:
    """Frame indices of the keyframes, read from the packets' flags (no decoding)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        entries = sorted(
            (p.pts, bool(p.is_keyframe)) for p in container.demux(stream) if p.pts is not None
        )
    return [i for i, (_, key) in enumerate(entries) if key]


def ingest_into(path: Path, data: Path, options: IngestOptions | None = None) -> AssetDir:
    asset = ingest(path, data, options or IngestOptions())
    return AssetDir(data / "assets" / asset.id)


def random_ranges(frames: int, segment: int, seed: int) -> list[tuple[int, int]]:
    """Hand-picked edge cases, then seeded random ranges (some jump backwards)."""
    last = (frames - 1) // segment * segment
    picked = [
        (0, 1),  # the very first frame
        (segment - 1, segment + 1),  # across the first boundary
        (segment + 1, segment + 2),  # just after it, reached by continuing
        (last, frames),  # the last, partial segment
        (frames - 1, frames),  # the last frame alone
        (3, 4),  # a long way back
        (segment - 2, 2 * segment + 3),  # across two boundaries
        (2 * segment + 3, 2 * segment + 9),  # continuation
    ]
    rng = random.Random(seed)
    for _ in range(8):
        a = rng.randrange(frames)
        b = rng.randint(a + 1, min(frames, a + segment + segment // 2))
        picked.append((a, b))
    return picked


# --- (a) random ranges through one reader ---------------------------------------------------


def test_random_ranges_decode_exactly(barcode_asset: tuple[Asset, AssetDir]) -> None:
    asset, adir = barcode_asset
    _, index = adir.load()
    ranges = random_ranges(asset.frames, asset.segment_frames, seed=20240601)
    assert len(ranges) >= 15
    assert any(b < a for (a, _), (b, _) in itertools.pairwise(ranges)), "no jump back"
    with MezzanineReader(adir.mezzanine, index) as reader:
        for a, b in ranges:
            out = reader.read(FrameRange(a, b))
            assert out.shape == (b - a, asset.height, asset.width, 3)
            assert out.dtype == np.uint8
            assert barcodes(out) == list(range(a, b)), f"range [{a}, {b})"


def test_consecutive_reads_never_seek(barcode_asset: tuple[Asset, AssetDir]) -> None:
    asset, adir = barcode_asset
    _, index = adir.load()
    reader = CountingReader(adir.mezzanine, index)
    with reader:
        got: list[int] = []
        for a in range(0, asset.frames, 7):
            got += barcodes(reader.read(FrameRange(a, min(a + 7, asset.frames))))
        assert got == list(range(asset.frames))
        assert reader.seeks == 1  # only the first read opens and seeks

        # a backward jump has to seek; so does a forward jump over a keyframe
        assert barcodes(reader.read(FrameRange(2, 4))) == [2, 3]
        assert reader.seeks == 2
        s = asset.segment_frames
        assert barcodes(reader.read(FrameRange(2 * s + 1, 2 * s + 3))) == [2 * s + 1, 2 * s + 2]
        assert reader.seeks == 3
        # a forward jump inside the current GOP decodes on, without a seek
        assert barcodes(reader.read(FrameRange(2 * s + 10, 2 * s + 11))) == [2 * s + 10]
        assert reader.seeks == 3


def test_reader_edges(barcode_asset: tuple[Asset, AssetDir]) -> None:
    asset, adir = barcode_asset
    _, index = adir.load()
    with MezzanineReader(adir.mezzanine, index) as reader:
        assert reader.read(FrameRange(5, 5)).shape[0] == 0
        with pytest.raises(IndexError):
            reader.read(FrameRange(asset.frames - 1, asset.frames + 1))
        # still usable after a rejected request, and after close() it reopens
        assert barcodes(reader.read(FrameRange(40, 42))) == [40, 41]
        reader.close()
        assert barcodes(reader.read(FrameRange(41, 43))) == [41, 42]


# --- (b) the mezzanine itself -----------------------------------------------------------------


def test_mezzanine_keeps_every_frame_at_its_index(barcode_asset: tuple[Asset, AssetDir]) -> None:
    asset, adir = barcode_asset
    _, index = adir.load()
    decoded = decode_all(adir.mezzanine)
    assert len(decoded) == asset.frames == len(index.pts) == 95
    assert [read_barcode(f.to_ndarray(format="rgb24")) for f in decoded] == list(range(95))
    pts = [f.pts for f in decoded]
    assert all(p is not None for p in pts)
    assert all(b > a for a, b in itertools.pairwise(pts))  # type: ignore[operator]
    assert pts == index.pts
    tb = Fraction(index.time_base_num, index.time_base_den)
    assert [p * tb for p in index.pts] == [Fraction(i) / asset.fps for i in range(95)]
    assert all((f.width, f.height) == (asset.width, asset.height) for f in decoded)


def test_mezzanine_keyframes_at_segment_boundaries(barcode_asset: tuple[Asset, AssetDir]) -> None:
    asset, adir = barcode_asset
    _, index = adir.load()
    boundaries = list(range(0, asset.frames, asset.segment_frames))
    assert asset.segment_frames == 30 and boundaries == [0, 30, 60, 90]
    assert index.keyframes == boundaries
    assert packet_keyframes(adir.mezzanine) == boundaries


# --- (c) variable frame rate ----------------------------------------------------------------


def test_variable_frame_rate_is_resampled_by_time(media_dir: Path, data_dir: Path) -> None:
    rng = random.Random(7)
    gaps = [Fraction(rng.choice([20, 33, 50, 67]), 1000) for _ in range(59)]
    times = [Fraction(0)]
    for gap in gaps:
        times.append(times[-1] + gap)
    src = make_barcode_video(
        media_dir / "decode-vfr.mkv", len(times), Fraction(30), (160, 120), times=times
    )
    adir = ingest_into(src, data_dir)
    asset, index = adir.load()
    tolerance = Fraction(1, 1000)
    expected = [
        max(j for j, t in enumerate(times) if t <= Fraction(i) / asset.fps + tolerance)
        for i in range(asset.frames)
    ]
    # the clip must exercise both directions of the resampling
    assert len(set(expected)) < len(expected), "no source frame was repeated"
    assert set(expected) != set(range(len(times))), "no source frame was dropped"
    # the last source frame lasts as long as the gap before it
    end = times[-1] + gaps[-1]
    assert (
        Fraction(asset.frames - 1) / asset.fps
        < end
        <= Fraction(asset.frames) / asset.fps + (tolerance)
    )
    assert mezzanine_barcodes(adir) == expected
    assert index.keyframes == list(range(0, asset.frames, asset.segment_frames))
    with MezzanineReader(adir.mezzanine, index) as reader:
        for a, b in [(0, 12), (25, 40), (asset.frames - 5, asset.frames), (3, 9)]:
            assert barcodes(reader.read(FrameRange(a, b))) == expected[a:b]


# --- (d) long-GOP source ----------------------------------------------------------------------


def test_long_gop_source_gets_a_keyframe_every_segment(media_dir: Path, data_dir: Path) -> None:
    src = make_barcode_video(
        media_dir / "decode-longgop.mp4", 330, Fraction(30), (160, 120), gop=300
    )
    assert packet_keyframes(src) == [0, 300]  # the source really has a 10 s GOP
    adir = ingest_into(src, data_dir)
    asset, index = adir.load()
    assert asset.frames == 330 and asset.segment_frames == 30
    assert index.keyframes == list(range(0, 330, 30))
    assert packet_keyframes(adir.mezzanine) == index.keyframes
    with MezzanineReader(adir.mezzanine, index) as reader:
        for a, b in [(275, 305), (150, 151), (329, 330), (0, 45), (299, 301), (200, 231)]:
            assert barcodes(reader.read(FrameRange(a, b))) == list(range(a, b))


# --- (e) re-ingest ----------------------------------------------------------------------------


def test_reingest_is_instant_and_identical(
    barcode_asset: tuple[Asset, AssetDir], barcode_path: Path, data_dir: Path, tmp_path: Path
) -> None:
    asset, adir = barcode_asset
    before = adir.mezzanine.stat().st_mtime_ns
    started = time.perf_counter()
    again = ingest(barcode_path, data_dir)
    elapsed = time.perf_counter() - started
    assert again == asset
    assert adir.mezzanine.stat().st_mtime_ns == before
    assert elapsed < 1.0
    # content-addressed: the same bytes under another name are the same asset
    copy = tmp_path / "renamed.mp4"
    copy.write_bytes(barcode_path.read_bytes())
    assert ingest(copy, data_dir).id == asset.id
    assert adir.mezzanine.stat().st_mtime_ns == before


# --- (f) segment maths, frame-rate cap, size cap ------------------------------------------------


def test_segment_range_edges(barcode_asset: tuple[Asset, AssetDir]) -> None:
    asset, _ = barcode_asset
    assert asset.segments == 4
    assert asset.segment_range(0) == FrameRange(0, 30)
    assert asset.segment_range(2) == FrameRange(60, 90)
    assert asset.segment_range(3) == FrameRange(90, 95)
    assert sum(asset.segment_range(k).count for k in range(asset.segments)) == asset.frames
    for bad in (-1, 4, 100):
        with pytest.raises(IndexError):
            asset.segment_range(bad)


def test_segment_range_exact_multiple() -> None:
    asset = Asset(
        id="x",
        name="x",
        source_sha256="0",
        frames=60,
        fps_num=30,
        fps_den=1,
        width=2,
        height=2,
        segment_frames=30,
        source={},
    )
    assert asset.segments == 2
    assert asset.segment_range(1) == FrameRange(30, 60)
    with pytest.raises(IndexError):
        asset.segment_range(2)


@pytest.mark.parametrize(
    ("keyframes", "frame", "expected"),
    [
        ([0], 0, 0),
        ([0], 500, 0),
        ([0, 30, 60, 90], 0, 0),
        ([0, 30, 60, 90], 29, 0),
        ([0, 30, 60, 90], 30, 30),
        ([0, 30, 60, 90], 31, 30),
        ([0, 30, 60, 90], 89, 60),
        ([0, 30, 60, 90], 90, 90),
        ([0, 30, 60, 90], 94, 90),
        ([0, 30, 60, 90], 10_000, 90),
        ([0, 5, 9], 4, 0),
        ([0, 5, 9], 5, 5),
        ([0, 5, 9], 8, 5),
        ([0, 5, 9], 9, 9),
    ],
)
def test_keyframe_before(keyframes: list[int], frame: int, expected: int) -> None:
    index = FrameIndex(
        time_base_num=1,
        time_base_den=30,
        pts=list(range(keyframes[-1] + 1)),
        keyframes=keyframes,
    )
    assert index.keyframe_before(frame) == expected


def test_keyframe_before_on_real_index(barcode_asset: tuple[Asset, AssetDir]) -> None:
    asset, adir = barcode_asset
    _, index = adir.load()
    for frame in range(asset.frames):
        assert index.keyframe_before(frame) == frame // 30 * 30


def test_frame_rate_is_capped_at_60_by_time(media_dir: Path, data_dir: Path) -> None:
    src = make_barcode_video(media_dir / "decode-fast90.mp4", 45, Fraction(90), (160, 120))
    adir = ingest_into(src, data_dir)
    asset, _ = adir.load()
    assert asset.fps == 60
    assert asset.frames == 30  # 45 frames at 90 fps last 0.5 s
    assert asset.segment_frames == 60
    assert mezzanine_barcodes(adir) == [i * 90 // 60 for i in range(asset.frames)]


@pytest.mark.parametrize(
    ("size", "expected"),
    [((320, 240), (160, 120)), ((320, 182), (160, 92)), ((180, 320), (90, 160))],
)
def test_max_side_keeps_aspect_and_even_sides(
    media_dir: Path, data_dir: Path, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    src = make_barcode_video(media_dir / f"decode-{size[0]}x{size[1]}.mp4", 12, Fraction(30), size)
    adir = ingest_into(src, data_dir, IngestOptions(max_side=160))
    asset, _ = adir.load()
    w, h = asset.width, asset.height
    assert (w, h) == expected
    assert max(w, h) == 160 and w % 2 == 0 and h % 2 == 0
    assert abs(w / h - size[0] / size[1]) < 0.03
    decoded = decode_all(adir.mezzanine)
    assert all((f.width, f.height) == (w, h) for f in decoded)
    assert [read_barcode(f.to_ndarray(format="rgb24")) for f in decoded] == list(range(12))
    # a different cap is a different mezzanine, so a different asset
    assert asset.id != ingest(src, data_dir).id
