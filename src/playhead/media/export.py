"""Export writers: the finished render as a file an editor can use.

- ``mp4``: H.264 with the effect composited in.
- ``mov-alpha``: ProRes 4444 with an alpha channel (colour + matte), for NLE compositing.
- ``webm-alpha``: VP9 with alpha, for the web (decode it with libvpx-vp9: FFmpeg's native vp9
  decoder drops the alpha channel).
- ``png-matte``: the matte alone, one grayscale PNG per frame, in a directory or a ``.zip``.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from fractions import Fraction
from pathlib import Path
from typing import ClassVar, Literal, Protocol, cast

import av
import cv2
import numpy as np
from av.video.stream import VideoStream

from playhead.effects import devices
from playhead.errors import UnsupportedError
from playhead.media import codecs

ExportFormat = Literal["mp4", "mov-alpha", "webm-alpha", "png-matte"]
FORMATS: tuple[ExportFormat, ...] = ("mp4", "mov-alpha", "webm-alpha", "png-matte")
EXTENSIONS: dict[ExportFormat, str] = {
    "mp4": ".mp4",
    "mov-alpha": ".mov",
    "webm-alpha": ".webm",
    "png-matte": ".zip",
}
NEEDS_MATTE: frozenset[ExportFormat] = frozenset({"png-matte"})
_MATTE_NAME = re.compile(r"matte_\d{6}\.png")


class ExportWriter(Protocol):
    def write(self, rgb: np.ndarray, matte: np.ndarray | None) -> None:
        """Append frames: ``rgb uint8[N,H,W,3]`` and ``matte uint8[N,H,W]`` (None = opaque)."""
        ...

    def close(self) -> None:
        """Finish the file: only now does it appear at its path."""
        ...

    def abort(self) -> None:
        """Give up: remove what was written so far."""
        ...


class _VideoWriter:
    """Writes to ``<path>.part`` and renames on success, so a failed export leaves nothing."""

    codec: str
    pix_fmt: str
    in_format: str
    container_format: str
    options: ClassVar[dict[str, str]] = {}
    container_options: ClassVar[dict[str, str]] = {}

    def __init__(self, path: Path, width: int, height: int, fps: Fraction) -> None:
        self.path = path
        self._part = path.with_name(path.name + ".part")
        self._out = av.open(
            str(self._part), "w", format=self.container_format, options=self.container_options
        )
        codec, options = self._encoder(width, height)
        self._stream = cast(VideoStream, self._out.add_stream(codec, rate=fps))
        self._stream.options = dict(options)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = self.pix_fmt
        self._tick = 1 / fps  # not stream.time_base: the muxer changes that when it starts
        self._stream.time_base = self._tick
        self._pts = 0

    def _encoder(self, width: int, height: int) -> tuple[str, dict[str, str]]:
        """The codec and its options: the class's own, unless a writer picks by device."""
        return self.codec, dict(self.options)

    def _pixels(self, rgb: np.ndarray, matte: np.ndarray | None) -> np.ndarray:
        return rgb

    def write(self, rgb: np.ndarray, matte: np.ndarray | None) -> None:
        pixels = self._pixels(rgb, matte)
        for j in range(len(pixels)):
            frame = av.VideoFrame.from_ndarray(pixels[j], format=self.in_format)
            frame.pts, frame.time_base = self._pts, self._tick
            self._pts += 1
            for packet in self._stream.encode(frame):
                self._out.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._out.mux(packet)
        self._out.close()
        self._part.replace(self.path)

    def abort(self) -> None:
        self._out.close()
        self._part.unlink(missing_ok=True)


class _AlphaWriter(_VideoWriter):
    in_format = "rgba"

    def _pixels(self, rgb: np.ndarray, matte: np.ndarray | None) -> np.ndarray:
        alpha = np.full(rgb.shape[:3], 255, np.uint8) if matte is None else matte
        return np.concatenate([rgb, alpha[..., None]], axis=3)


class Mp4Writer(_VideoWriter):
    """H.264 with the encoder of the process's device: NVENC on a cuda device where it opens,
    else libx264 (`playhead.media.codecs.h264_encoder`)."""

    codec, pix_fmt, in_format, container_format = "libx264", "yuv420p", "rgb24", "mp4"
    options: ClassVar[dict[str, str]] = {"crf": "18", "preset": "medium"}
    container_options: ClassVar[dict[str, str]] = {"movflags": "+faststart"}  # web playback

    def _encoder(self, width: int, height: int) -> tuple[str, dict[str, str]]:
        device = devices.current()
        if codecs.h264_encoder(device, width, height) == codecs.NVENC:
            return codecs.NVENC, codecs.nvenc_options(device, quality=18)
        return super()._encoder(width, height)


class MovAlphaWriter(_AlphaWriter):
    codec, pix_fmt, container_format = "prores_ks", "yuva444p10le", "mov"
    options: ClassVar[dict[str, str]] = {
        "profile": "4",
        "vendor": "apl0",
        "alpha_bits": "16",  # keeps soft matte edges
    }  # profile 4 = ProRes 4444


class WebmAlphaWriter(_AlphaWriter):
    codec, pix_fmt, container_format = "libvpx-vp9", "yuva420p", "webm"
    options: ClassVar[dict[str, str]] = {
        "crf": "30",
        "b": "0",
        "deadline": "good",
        "cpu-used": "4",
        "row-mt": "1",
    }


class PngMatteWriter:
    """One ``matte_000000.png`` per frame, into a directory, or a zip when the path ends .zip."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip = path.suffix.lower() == ".zip"
        self._part = path.with_name(path.name + ".part")
        if not self._zip and path.exists() and not _only_mattes(path):
            # close() replaces the directory: never when it holds anything but our output
            raise UnsupportedError(
                f"{path.name} exists and holds other files; choose a new or empty directory"
            )
        if self._zip:
            self._archive: zipfile.ZipFile | None = zipfile.ZipFile(self._part, "w")
        else:
            self._archive = None
            shutil.rmtree(self._part, ignore_errors=True)
            self._part.mkdir(parents=True)
        self._n = 0

    def write(self, rgb: np.ndarray, matte: np.ndarray | None) -> None:
        if matte is None:
            raise ValueError("png-matte needs a matte")
        for m in matte:
            ok, png = cv2.imencode(".png", m)
            if not ok:
                raise RuntimeError("PNG encoding failed")
            name = f"matte_{self._n:06d}.png"
            if self._archive is not None:
                self._archive.writestr(name, png.tobytes(), compress_type=zipfile.ZIP_STORED)
            else:
                (self._part / name).write_bytes(png.tobytes())
            self._n += 1

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
        elif self.path.exists():
            shutil.rmtree(self.path)
        self._part.replace(self.path)

    def abort(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._part.unlink(missing_ok=True)
        else:
            shutil.rmtree(self._part, ignore_errors=True)


def _only_mattes(path: Path) -> bool:
    return path.is_dir() and all(_MATTE_NAME.fullmatch(p.name) for p in path.iterdir())


_VIDEO_WRITERS: dict[str, type[_VideoWriter]] = {
    "mp4": Mp4Writer,
    "mov-alpha": MovAlphaWriter,
    "webm-alpha": WebmAlphaWriter,
}


def open_writer(
    fmt: ExportFormat, path: Path, width: int, height: int, fps: Fraction
) -> ExportWriter:
    if fmt == "png-matte":
        return PngMatteWriter(path)
    return _VIDEO_WRITERS[fmt](path, width, height, fps)
