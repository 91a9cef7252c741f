"""Probe a source file and reject what we will not ingest, with a clear message."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from playhead.errors import InvalidMediaError, MediaTooLargeError

# The demuxers an upload may use (FFmpeg's names). Everything else is refused before FFmpeg
# reads a byte with it: its text demuxers (a .txt file opens as a "video" of rendered text),
# playlists and concat lists (which open other files or URLs named inside them), devices,
# image sequences. Audio-only containers are allowed so that they get the clearer "no video
# stream" answer.
CONTAINERS = (
    "mov,mp4,m4a,3gp,3g2,mj2",  # MP4, MOV
    "matroska,webm",
    "avi",
    "mpegts",
    "mpeg",  # MPEG program streams (.mpg, .vob)
    "flv",
    "mxf",
    "asf",  # WMV
    "ogg",
    "wav",
    "mp3",
    "flac",
)


def open_source(path: Path) -> av.container.InputContainer:
    """Open an uploaded file with the allowed demuxers only."""
    container: av.container.InputContainer = av.open(
        str(path), metadata_errors="ignore", options={"format_whitelist": ",".join(CONTAINERS)}
    )
    return container


@dataclass(frozen=True)
class Limits:
    """What an upload may be. Every field is configurable; defaults suit a laptop editor."""

    max_side: int = 3840
    max_duration_s: float = 600.0
    max_bytes: int = 2 * 1024**3


@dataclass(frozen=True)
class Probe:
    container: str
    codec: str
    width: int
    height: int
    fps: Fraction  # average frame rate
    frames: int  # exact when counted, else estimated from duration
    duration_s: float
    size_bytes: int
    streams: int

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["fps"] = float(self.fps)
        return d


def probe(path: str | Path, limits: Limits = Limits(), count_frames: bool = True) -> Probe:
    """Open ``path`` and describe its first video stream.

    With ``count_frames`` every packet is read (no decoding), which is how truncated files
    and zero-frame files are caught before any work is spent on them.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidMediaError(f"{path.name}: no such file")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise MediaTooLargeError(
            f"{path.name}: {_bytes(size)} is over the {_bytes(limits.max_bytes)} limit"
        )
    if size == 0:
        raise InvalidMediaError(f"{path.name}: the file is empty")
    try:
        container = open_source(path)
    except av.error.ArgumentError as e:  # EINVAL: a demuxer knows it, but not an allowed one
        raise InvalidMediaError(
            f"{path.name}: not a video container we accept (MP4, MOV, MKV, WebM, AVI, MPEG-TS, "
            "MPEG-PS, FLV, MXF, WMV, Ogg)"
        ) from e
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or "unreadable"  # never echo server paths
        raise InvalidMediaError(f"{path.name}: not a media file we can read ({reason})") from e
    with container:
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
            raise InvalidMediaError(f"{path.name}: no video stream (streams: {kinds})")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        width, height = ctx.width, ctx.height
        if not width or not height:
            raise InvalidMediaError(f"{path.name}: the video stream has no picture size")
        if max(width, height) > limits.max_side:
            raise MediaTooLargeError(
                f"{path.name}: {width}x{height} is over the {limits.max_side}px limit "
                "on the longest side"
            )
        fps = standard_rate(Fraction(stream.average_rate or stream.guessed_rate or 0))
        if fps <= 0:
            raise InvalidMediaError(f"{path.name}: the video stream has no frame rate")
        duration = _duration(container, stream)
        if duration > limits.max_duration_s:
            raise MediaTooLargeError(
                f"{path.name}: {duration:.0f} s is over the {limits.max_duration_s:.0f} s limit"
            )
        frames = stream.frames or round(duration * fps)
        if count_frames:
            declared = stream.frames
            frames, span = _count_packets(container, stream, path.name)
            if declared and frames < declared:
                raise InvalidMediaError(
                    f"{path.name}: the file is truncated ({frames} of {declared} frames present)"
                )
            # Matroska declares no frame count, but it does declare a duration
            if not declared and duration > 0 and span < duration - max(0.5, 2 / float(fps)):
                raise InvalidMediaError(
                    f"{path.name}: the file is truncated (it ends at {span:.1f} s of "
                    f"{duration:.1f} s)"
                )
        if frames == 0:
            raise InvalidMediaError(f"{path.name}: the video stream has no frames")
        return Probe(
            container=container.format.name,
            codec=ctx.name,
            width=width,
            height=height,
            fps=fps,
            frames=frames,
            duration_s=duration,
            size_bytes=size,
            streams=len(container.streams),
        )


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return 0.0


def _count_packets(container: Any, stream: Any, name: str) -> tuple[int, float]:
    """Packets with data, and the time span (seconds) that they cover."""
    n = 0
    first: Fraction | None = None
    last: Fraction | None = None
    tb = Fraction(stream.time_base or 1)
    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue
            n += 1
            if packet.pts is not None:
                t0 = packet.pts * tb
                t1 = (packet.pts + (packet.duration or 0)) * tb
                first = t0 if first is None else min(first, t0)
                last = t1 if last is None else max(last, t1)
    except av.error.FFmpegError as e:
        reason = getattr(e, "strerror", None) or "unreadable"
        raise InvalidMediaError(f"{name}: the file is truncated or corrupt ({reason})") from e
    span = float(last - first) if first is not None and last is not None else 0.0
    return n, span


STANDARD_RATES = tuple(
    Fraction(r)
    for r in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60")
)


def standard_rate(fps: Fraction) -> Fraction:
    """Snap a measured average (Matroska's 59.94 reads as 19001/317) to the rate it means."""
    for rate in STANDARD_RATES:
        if abs(fps - rate) / rate < Fraction(1, 2000):
            return rate
    return fps.limit_denominator(1001) if fps > 0 else fps


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
