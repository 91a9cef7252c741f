"""Frame-exact decoding of any range of a mezzanine.

Random access seeks back to the keyframe at or before the range (at most one GOP = one segment
of decoding), then decodes forward and checks every frame's pts against the frame index. A
reader keeps its position, so reading consecutive ranges never seeks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from playhead.errors import FrameIndexError
from playhead.media import codecs
from playhead.media.asset import FrameIndex
from playhead.types import FrameRange

TAIL = 4  # frames kept for temporal context; effects declare at most a few


class MezzanineReader:
    """Reads ``uint8[N,H,W,3]`` RGB frames of any ``[start, stop)`` range. Not thread-safe."""

    def __init__(self, path: Path, index: FrameIndex, decoder: str | None = None) -> None:
        """``decoder``: a decoder by name, fed the demuxed packets (``h264_cuvid``, ``h264``);
        None = the process's device's choice (`codecs.h264_decoder`: FFmpeg's software decoder
        unless NVDEC is opted into)."""
        self.path = path
        self.index = index
        self.decoder = decoder if decoder is not None else codecs.h264_decoder()
        self._container: Any = None
        self._decoder: Any = None  # the named decoder's context, made with the container
        self._frames: Any = None  # the live decode generator
        self._next: int | None = -1  # frame the generator yields next; None right after a seek
        # the last frames returned, ending at _next - 1: a segment's context frames (the end of
        # the previous segment) come from here instead of a seek back and a GOP of decoding
        self._tail: list[np.ndarray] = []

    def __enter__(self) -> MezzanineReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._frames = self._decoder = None
        self._next = -1
        self._tail = []

    def read(self, frames: FrameRange) -> np.ndarray:
        start, stop = frames.start, frames.stop
        total = len(self.index.pts)
        if not 0 <= start <= stop <= total:
            raise IndexError(f"frames [{start}, {stop}) are outside 0..{total}")
        if start == stop:
            return np.zeros((0, 0, 0, 3), np.uint8)
        here = self._next
        if here is not None and here - len(self._tail) <= start < here:
            head = self._tail[len(self._tail) - (here - start) :][: stop - start]
            if stop <= here:
                return np.stack(head)
            return np.concatenate([np.stack(head), self.read(FrameRange(here, stop))])
        out: list[np.ndarray] = []
        # carry on decoding unless a seek would skip frames (a keyframe lies ahead of us)
        here = self._next
        if here is None or not (0 <= here <= start and self.index.keyframe_before(start) <= here):
            self._seek(start)
        for frame in self._frames:
            i = self.index.frame_of_pts.get(frame.pts)
            if self._next is None and i is not None and i <= start:
                self._next = i  # where the seek landed: a keyframe at or before start
            if i is None or i != self._next:
                raise FrameIndexError(
                    f"{self.path.name}: expected frame {self._next}, got pts {frame.pts} "
                    f"(frame {i}); the mezzanine does not match its index"
                )
            self._next = i + 1
            if i >= start:
                out.append(frame.to_ndarray(format="rgb24"))
                self._tail = [*self._tail[-(TAIL - 1) :], out[-1]]
            else:
                self._tail = []  # skipped frames are not kept: the tail must stay contiguous
            if i == stop - 1:
                return np.stack(out)
        raise FrameIndexError(f"{self.path.name}: ended at frame {self._next}, wanted {stop}")

    def _seek(self, start: int) -> None:
        if self._container is None:
            self._container = av.open(str(self.path))
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            if self.decoder is not None:
                self._decoder = codecs.open_decoder(self.decoder, self._stream)
        key = self.index.keyframe_before(start)
        self._container.seek(self.index.pts[key], stream=self._stream, backward=True)
        if self._decoder is None:
            self._frames = self._container.decode(self._stream)
        else:
            self._decoder.flush_buffers()  # frames of packets from before the seek: gone
            self._frames = _decoded(self._container, self._stream, self._decoder)
        self._next = None
        self._tail = []


def _decoded(container: Any, stream: Any, decoder: Any) -> Iterator[Any]:
    """Frames of ``stream``'s packets through ``decoder`` (the last, empty packet drains it)."""
    for packet in container.demux(stream):
        yield from decoder.decode(packet)
