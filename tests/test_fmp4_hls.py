"""Segments rendered on their own fit together: fMP4 fragments and the HLS playlist over them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from playhead.effects import registry
from playhead.media.asset import Asset, AssetDir
from playhead.media.fmp4 import EncodedSegment, SegmentEncoder, boxes
from playhead.media.hls import vod_playlist
from playhead.media.ingest import ingest
from playhead.media.testsrc import decode_all, make_barcode_video, read_barcode
from playhead.pipeline import SegmentPipeline
from playhead.types import FrameRange


@dataclass(frozen=True)
class Rendered:
    asset: Asset
    ranges: list[FrameRange]
    segments: list[EncodedSegment]


def render_passthrough(asset: Asset, adir: AssetDir) -> Rendered:
    """What ``playhead render`` and a worker do per segment, encoded as fMP4 fragments."""
    effect = registry.get("passthrough")
    runner = effect.load()
    params = registry.parse_params(effect, {})
    encoder = SegmentEncoder(asset.width, asset.height, asset.fps)
    ranges: list[FrameRange] = []
    segments: list[EncodedSegment] = []
    with SegmentPipeline(asset, adir, effect, runner, params) as pipe:
        for k in range(asset.segments):
            seg = pipe.render(k)
            ranges.append(seg.frames)
            segments.append(encoder.encode(seg.frames.start, seg.composite))
    return Rendered(asset, ranges, segments)


@pytest.fixture(scope="module")
def rendered(barcode_asset: tuple[Asset, AssetDir]) -> Rendered:
    return render_passthrough(*barcode_asset)


@pytest.fixture(scope="module")
def rendered_ntsc(media_dir: Path, data_dir: Path) -> Rendered:
    src = make_barcode_video(media_dir / "hls-ntsc.mp4", 70, Fraction(30000, 1001), (160, 120))
    asset = ingest(src, data_dir)
    assert asset.fps == Fraction(30000, 1001)
    return render_passthrough(asset, AssetDir(data_dir / "assets" / asset.id))


@pytest.fixture(params=["30", "30000/1001"])
def any_rendered(
    request: pytest.FixtureRequest, rendered: Rendered, rendered_ntsc: Rendered
) -> Rendered:
    return rendered if request.param == "30" else rendered_ntsc


def check_frames(path: Path, first: int, count: int, fps: Fraction) -> None:
    """``path`` decodes to ``count`` frames carrying barcodes and times ``first..``."""
    frames = decode_all(path)
    assert len(frames) == count
    assert [read_barcode(f.to_ndarray(format="rgb24")) for f in frames] == list(
        range(first, first + count)
    )
    times = []
    for f in frames:
        assert f.pts is not None and f.time_base is not None
        times.append(f.pts * Fraction(f.time_base))
    assert times == [Fraction(first + j) / fps for j in range(count)]


def test_segments_are_whole_fragments(any_rendered: Rendered) -> None:
    r = any_rendered
    assert len(r.segments) == r.asset.segments >= 3
    assert [fr.count for fr in r.ranges][-1] < r.asset.segment_frames  # a short last segment
    for seg in r.segments:
        assert [t for t, _, _ in boxes(seg.init)] == ["ftyp", "moov"]
        assert [t for t, _, _ in boxes(seg.media)] == ["moof", "mdat"]


def test_every_init_is_byte_identical(any_rendered: Rendered) -> None:
    inits = {seg.init for seg in any_rendered.segments}
    assert len(inits) == 1


def test_concatenation_is_one_valid_mp4(any_rendered: Rendered, tmp_path: Path) -> None:
    r = any_rendered
    path = tmp_path / "whole.mp4"
    path.write_bytes(r.segments[0].init + b"".join(s.media for s in r.segments))
    check_frames(path, 0, r.asset.frames, r.asset.fps)


def test_each_fragment_decodes_alone(any_rendered: Rendered, tmp_path: Path) -> None:
    r = any_rendered
    for k, (frames, seg) in enumerate(zip(r.ranges, r.segments, strict=True)):
        assert frames == r.asset.segment_range(k)
        path = tmp_path / f"alone{k}.mp4"
        path.write_bytes(seg.init + seg.media)
        check_frames(path, frames.start, frames.count, r.asset.fps)


def test_fragments_decode_out_of_order(rendered: Rendered, tmp_path: Path) -> None:
    """A player may fetch segment 2 before segment 1 (seeking); each carries its own times."""
    r = rendered
    path = tmp_path / "seeked.mp4"
    path.write_bytes(r.segments[0].init + r.segments[2].media)
    check_frames(path, r.ranges[2].start, r.ranges[2].count, r.asset.fps)


def test_encoder_rejects_wrong_size(rendered: Rendered) -> None:
    a = rendered.asset
    encoder = SegmentEncoder(a.width + 2, a.height, a.fps)
    with pytest.raises(ValueError, match="encoder is"):
        encoder.encode(0, np.zeros((2, a.height, a.width, 3), np.uint8))


# --- HLS ----------------------------------------------------------------------------------------


def parse_playlist(text: str) -> tuple[dict[str, str], list[tuple[float, str]]]:
    """Tags (name -> value) and the (EXTINF duration, uri) list of a media playlist."""
    lines = text.splitlines()
    tags: dict[str, str] = {}
    entries: list[tuple[float, str]] = []
    for j, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            assert line.endswith(",")
            entries.append((float(line[len("#EXTINF:") : -1]), lines[j + 1]))
        elif line.startswith("#"):
            name, _, value = line.partition(":")
            tags[name] = value
    return tags, entries


def test_vod_playlist(any_rendered: Rendered) -> None:
    r = any_rendered
    counts = [fr.count for fr in r.ranges]
    text = vod_playlist(counts, r.asset.fps)
    assert text.startswith("#EXTM3U\n") and text.endswith("#EXT-X-ENDLIST\n")
    tags, entries = parse_playlist(text)
    assert tags["#EXT-X-VERSION"] == "7"
    assert tags["#EXT-X-MAP"] == 'URI="init.mp4"'
    assert tags["#EXT-X-PLAYLIST-TYPE"] == "VOD"
    assert tags["#EXT-X-MEDIA-SEQUENCE"] == "0"
    assert "#EXT-X-ENDLIST" in tags
    longest = max(Fraction(n) / r.asset.fps for n in counts)
    assert int(tags["#EXT-X-TARGETDURATION"]) == math.ceil(longest)
    assert [uri for _, uri in entries] == [f"{k}.m4s" for k in range(len(counts))]
    for (duration, _), n in zip(entries, counts, strict=True):
        assert duration == pytest.approx(n / float(r.asset.fps), abs=1e-6)
        assert round(duration) <= int(tags["#EXT-X-TARGETDURATION"])
    assert sum(d for d, _ in entries) == pytest.approx(r.asset.frames / r.asset.fps, abs=1e-5)


def test_vod_playlist_ntsc_durations() -> None:
    text = vod_playlist([30, 30, 10], Fraction(30000, 1001))
    tags, entries = parse_playlist(text)
    assert [d for d, _ in entries] == [1.001, 1.001, pytest.approx(10 * 1001 / 30000, abs=1e-6)]
    assert tags["#EXT-X-TARGETDURATION"] == "2"


def test_vod_playlist_custom_uris() -> None:
    text = vod_playlist([30, 5], Fraction(30), init_uri="r/init.mp4", uri="r/seg-{k}.m4s")
    tags, entries = parse_playlist(text)
    assert tags["#EXT-X-MAP"] == 'URI="r/init.mp4"'
    assert [uri for _, uri in entries] == ["r/seg-0.m4s", "r/seg-1.m4s"]


def test_ffmpeg_plays_the_hls_stream(any_rendered: Rendered, tmp_path: Path) -> None:
    r = any_rendered
    (tmp_path / "init.mp4").write_bytes(r.segments[0].init)
    for k, seg in enumerate(r.segments):
        (tmp_path / f"{k}.m4s").write_bytes(seg.media)
    playlist = tmp_path / "index.m3u8"
    playlist.write_text(vod_playlist([fr.count for fr in r.ranges], r.asset.fps))
    with av.open(str(playlist)) as container:
        assert container.format.name == "hls"
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (
            r.asset.width,
            r.asset.height,
        )
        frames = list(container.decode(stream))
    assert [read_barcode(f.to_ndarray(format="rgb24")) for f in frames] == list(
        range(r.asset.frames)
    )
    times = []
    for f in frames:
        assert f.pts is not None and f.time_base is not None
        times.append(f.pts * Fraction(f.time_base))
    # the HLS demuxer may shift the timeline; the spacing must still be exact
    assert [t - times[0] for t in times] == [Fraction(i) / r.asset.fps for i in range(len(times))]
