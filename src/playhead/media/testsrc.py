"""Generated test media: frames that carry their own index as a visual barcode.

Used by the tests and the benchmarks; frame-exactness checks read the index back.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
from av.video.stream import VideoStream

BITS = 12  # up to 4096 frames


def barcode_frame(index: int, width: int, height: int, phase: int = 0) -> np.ndarray:
    """An RGB frame whose top half is ``BITS`` black/white stripes spelling ``index``.

    Stripes are wide and flat, so the code survives lossy compression and down-scaling. The
    bottom half is a moving gradient, so encoders see real motion.
    """
    img = np.zeros((height, width, 3), np.uint8)
    edges = np.linspace(0, width, BITS + 1).astype(int)
    for b in range(BITS):
        if index >> (BITS - 1 - b) & 1:
            img[: height // 2, edges[b] : edges[b + 1]] = 255
    x = (np.arange(width) * 2 + index * 5 + phase) % 256
    img[height // 2 :, :, 0] = x[None, :].astype(np.uint8)
    img[height // 2 :, :, 1] = 128
    img[height // 2 :, :, 2] = 255 - x[None, :].astype(np.uint8)
    return img


def read_barcode(frame: np.ndarray) -> int:
    """The index a barcode frame carries (sampled at the middle of each stripe)."""
    height, width = frame.shape[:2]
    edges = np.linspace(0, width, BITS + 1)
    row = frame[height // 4, :, :].mean(axis=1)
    value = 0
    for b in range(BITS):
        centre = int((edges[b] + edges[b + 1]) / 2)
        value = value << 1 | int(row[centre] > 127)
    return value


def make_barcode_video(
    path: Path,
    frames: int,
    fps: Fraction = Fraction(30),
    size: tuple[int, int] = (320, 240),
    gop: int | None = None,
    times: Sequence[Fraction] | None = None,
    codec: str = "libx264",
    phase: int = 0,
) -> Path:
    """Write a barcode video. ``times`` (seconds) makes it variable frame rate."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = cast(VideoStream, out.add_stream(codec, rate=fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        tb = Fraction(1, 1000 * fps.numerator) if times is not None else 1 / fps
        stream.time_base = stream.codec_context.time_base = tb
        if gop:
            stream.codec_context.gop_size = gop
            stream.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        for i in range(frames):
            pixels = barcode_frame(i, width, height, phase)  # phase: same barcodes, other file
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = int(times[i] / tb) if times is not None else i
            frame.time_base = tb
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def decode_all(path: Path | str, codec: str | None = None) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if codec:
            ctx: Any = av.codec.CodecContext.create(codec, "r")
            ctx.extradata = stream.codec_context.extradata
            return [f for p in container.demux(stream) for f in ctx.decode(p)]
        return list(container.decode(stream))
