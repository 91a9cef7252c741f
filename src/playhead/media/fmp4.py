"""Fragmented MP4 segments: one init segment plus one media fragment per segment.

Each segment is encoded on its own (any worker can encode any segment), yet the pieces fit
together: timestamps are the global frame indices (``frag_discont`` makes the fragment's
``tfdt`` the first frame's decode time), and every segment starts with an IDR frame and has no
B-frames. So ``init + fragment_0 + ... + fragment_{K-1}`` is one valid MP4 whose frame ``i``
is frame ``i`` of the render. The encoder settings are fixed, so every segment's init is
byte-identical and any one of them serves as the render's ``init.mp4``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av
import numpy as np
from av.video.stream import VideoStream

from playhead.effects import devices
from playhead.media import codecs


@dataclass(frozen=True)
class EncodedSegment:
    init: bytes  # ftyp + moov
    media: bytes  # moof + mdat


@dataclass(frozen=True)
class SegmentEncoder:
    width: int
    height: int
    fps: Fraction
    crf: int = 23
    preset: str = "veryfast"
    codec: str = codecs.LIBX264
    """libx264 for every segment the fleet serves: see `playhead.media.codecs` for why NVENC
    (``h264_nvenc``, with `codecs.segment_options`) is not chosen by the device here."""

    def encode(self, first_frame: int, frames: np.ndarray) -> EncodedSegment:
        """Encode RGB ``uint8[N,H,W,3]`` frames whose first is render frame ``first_frame``."""
        n, h, w = frames.shape[:3]
        if (w, h) != (self.width, self.height):
            raise ValueError(f"frames are {w}x{h}, the encoder is {self.width}x{self.height}")
        tick = 1 / self.fps
        buf = io.BytesIO()
        options = {
            "movflags": "empty_moov+default_base_moof+frag_keyframe+frag_discont",
            "avoid_negative_ts": "disabled",
            "video_track_timescale": str(self.fps.numerator),
        }
        with av.open(buf, "w", format="mp4", options=options) as out:
            stream = cast(
                VideoStream, out.add_stream(self.codec, rate=self.fps, options=self._options())
            )
            stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
            stream.time_base = tick
            for j in range(n):
                frame = av.VideoFrame.from_ndarray(frames[j], format="rgb24")
                frame.pts, frame.time_base = first_frame + j, tick
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        return split_fragment(buf.getvalue())

    def _options(self) -> dict[str, str]:
        if self.codec == codecs.NVENC:
            return codecs.segment_options(devices.current(), self.crf)
        return {
            "crf": str(self.crf),
            "preset": self.preset,
            "tune": "zerolatency",  # no B-frames, no lookahead: pts == dts, low latency
            # one IDR (the first frame) per segment; the same settings for every
            # segment, whatever its length, so every init is byte-identical
            "x264-params": "keyint=infinite:scenecut=0",
        }

    def init(self) -> bytes:
        """The init segment, without rendering anything: encode one black frame."""
        black = np.zeros((1, self.height, self.width, 3), np.uint8)
        return self.encode(0, black).init


def boxes(data: bytes) -> list[tuple[str, int, int]]:
    """Top-level ISO-BMFF boxes as ``(type, offset, size)``."""
    out = []
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        elif size == 0:
            size = len(data) - offset
        if size < 8:
            raise ValueError(f"bad box {kind!r} of size {size} at {offset}")
        out.append((kind, offset, size))
        offset += size
    return out


def split_fragment(data: bytes) -> EncodedSegment:
    """Split a muxed file into init (ftyp, moov) and media (moof, mdat); drop the trailing mfra."""
    parts = boxes(data)
    init = b"".join(data[o : o + n] for t, o, n in parts if t in ("ftyp", "moov"))
    media = b"".join(data[o : o + n] for t, o, n in parts if t in ("moof", "mdat"))
    return EncodedSegment(init=init, media=media)
