"""Ingest: turn an upload into a mezzanine that frame-exact work can rely on.

The mezzanine is constant frame rate (the source's average rate, capped at 60), H.264 yuv420p,
with a keyframe exactly at every segment boundary and the longest side capped. Variable frame
rate input is resampled in time: mezzanine frame ``i`` shows the source frame that is on screen
at ``i / fps`` (repeating or dropping source frames as needed).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from playhead.digest import sha256_file
from playhead.errors import InvalidMediaError
from playhead.media.asset import Asset, AssetDir, FrameIndex
from playhead.media.probe import Limits, open_source, probe

PROFILE_VERSION = 1  # bump when the mezzanine recipe changes: assets get new ids


@dataclass(frozen=True)
class IngestOptions:
    limits: Limits = field(default_factory=Limits)
    max_fps: int = 60
    max_side: int = 1280
    segment_seconds: float = 1.0
    crf: int = 18
    preset: str = "veryfast"

    def profile(self) -> dict[str, Any]:
        """What determines the mezzanine's pixels (limits don't, so they are not part of it)."""
        return {
            "v": PROFILE_VERSION,
            "max_fps": self.max_fps,
            "max_side": self.max_side,
            "segment_seconds": self.segment_seconds,
            "crf": self.crf,
        }


def asset_id(source_sha256: str, options: IngestOptions) -> str:
    key = source_sha256 + json.dumps(options.profile(), sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def ingest(
    path: str | Path,
    data_dir: Path,
    options: IngestOptions = IngestOptions(),
    name: str | None = None,
    source_sha256: str | None = None,
) -> Asset:
    """Ingest ``path`` into ``data_dir/assets/<id>``; instant if it was ingested before.
    ``source_sha256``: the file's hash when the caller has computed it already."""
    path = Path(path)
    if not path.is_file():
        raise InvalidMediaError(f"{path.name}: no such file")
    source_sha = source_sha256 or sha256_file(path)
    aid = asset_id(source_sha, options)
    adir = AssetDir(data_dir / "assets" / aid)
    if adir.complete():
        return adir.load()[0]

    info = probe(path, options.limits)
    fps = min(info.fps, Fraction(options.max_fps))
    width, height = _fit(info.width, info.height, options.max_side)
    segment_frames = max(1, round(options.segment_seconds * fps))

    work = adir.root.with_name(aid + ".part")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    mezz = work / "mezzanine.mp4"
    frames = _transcode(path, mezz, fps, width, height, segment_frames, options)
    index = read_index(mezz)
    if len(index.pts) != frames:
        raise InvalidMediaError(f"{path.name}: mezzanine has {len(index.pts)} of {frames} frames")
    asset = Asset(
        id=aid,
        name=name or path.name,
        source_sha256=source_sha,
        frames=frames,
        fps_num=fps.numerator,
        fps_den=fps.denominator,
        width=width,
        height=height,
        segment_frames=segment_frames,
        source=info.to_json(),
    )
    AssetDir(work).save(asset, index)
    if adir.root.exists():  # a concurrent ingest of the same file won; theirs is identical
        shutil.rmtree(work, ignore_errors=True)
    else:
        work.replace(adir.root)
    return adir.load()[0]


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Scale down to ``max_side`` keeping the aspect ratio; H.264 4:2:0 needs even sides."""
    scale = min(1.0, max_side / max(width, height))
    w = max(2, round(width * scale / 2) * 2)
    h = max(2, round(height * scale / 2) * 2)
    return w, h


def _source_frames(path: Path, name: str) -> Iterator[tuple[Fraction, av.VideoFrame]]:
    """Decoded source frames with their presentation time relative to the first frame."""
    try:
        with open_source(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fallback = 1 / Fraction(stream.average_rate or 25)
            t0: Fraction | None = None
            for n, frame in enumerate(container.decode(stream)):
                if frame.pts is not None and frame.time_base is not None:
                    t = frame.pts * Fraction(frame.time_base)
                else:
                    t = n * fallback
                if t0 is None:
                    t0 = t
                yield t - t0, frame
    except av.error.FFmpegError as e:
        reason = getattr(e, "strerror", None) or "undecodable"
        raise InvalidMediaError(f"{name}: the file is truncated or corrupt ({reason})") from e


def _transcode(
    src: Path,
    dst: Path,
    fps: Fraction,
    width: int,
    height: int,
    segment_frames: int,
    options: IngestOptions,
) -> int:
    tick = 1 / fps
    with av.open(str(dst), "w", format="mp4") as out:
        stream = out.add_stream(
            "libx264",
            rate=fps,
            options={
                "crf": str(options.crf),
                "preset": options.preset,
                # keyframes exactly at segment boundaries and nowhere else: closed GOPs of S frames
                "x264-params": f"keyint={segment_frames}:min-keyint={segment_frames}"
                ":scenecut=0:open-gop=0",
            },
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = tick
        stream.thread_type = "AUTO"

        def emit(frame: av.VideoFrame, i: int) -> None:
            f = frame.reformat(width=width, height=height, format="yuv420p")
            f.pts, f.time_base = i, tick
            f.pict_type = av.video.frame.PictureType.I if i % segment_frames == 0 else 0
            for packet in stream.encode(f):
                out.mux(packet)

        i = 0
        current: tuple[Fraction, av.VideoFrame] | None = None
        # absorb source timestamps rounded to a coarse time base (Matroska: 1 ms)
        tolerance = min(tick / 4, Fraction(1, 1000))
        last_gap = tick
        for t, frame in _source_frames(src, src.name):
            if current is not None:
                if t <= current[0]:
                    continue  # out-of-order or duplicate timestamp: keep the first
                last_gap = t - current[0]
                # every output instant before this frame appears shows the current frame
                while i * tick + tolerance < t:
                    emit(current[1], i)
                    i += 1
            current = (t, frame)
        if current is None:
            raise InvalidMediaError(f"{src.name}: no frame could be decoded")
        end = current[0] + last_gap  # the last frame lasts as long as the gap before it
        while i * tick + tolerance < end or i == 0:
            emit(current[1], i)
            i += 1
        for packet in stream.encode():
            out.mux(packet)
    return i


def read_index(path: Path) -> FrameIndex:
    """Build the frame index from the mezzanine's packets (no decoding)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        entries = sorted(
            (p.pts, bool(p.is_keyframe)) for p in container.demux(stream) if p.pts is not None
        )
        tb = Fraction(stream.time_base or 1)
    return FrameIndex(
        time_base_num=tb.numerator,
        time_base_den=tb.denominator,
        pts=[p for p, _ in entries],
        keyframes=[i for i, (_, key) in enumerate(entries) if key],
    )
