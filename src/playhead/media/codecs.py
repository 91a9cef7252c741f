"""H.264 codecs for a device: NVENC / NVDEC on a cuda device where they work, else x264 and
FFmpeg's software decoder.

The device is the process's (`playhead.effects.devices.current`); this module knows nothing of
effects, it only asks which hardware the process runs on. A hardware codec is chosen only after
PyAV has opened it here once (the answer is cached): a cuda device whose driver lacks the video
libraries, or a PyAV built without them, silently keeps the software codecs.

Where each is used, and why:

- **exports** written whole by one process (`playhead.media.export.Mp4Writer`):
  `h264_encoder` for the device. One process writes the file start to end, so nothing else
  has to match it.
- **fMP4 segments** (`playhead.media.fmp4.SegmentEncoder`): libx264 whatever the device. A
  render's init segment (the SPS/PPS every fragment is decoded with) is made once, by whichever
  process asks first (often an API replica without a GPU), and every fragment, from every
  worker, is played and exported with it. Fragments from NVENC do not decode with an x264 init
  (nor with another driver's NVENC init), so until the encoder is part of a render's init and
  segment keys, segments stay on one encoder for the whole fleet. `segment_options` holds the
  NVENC settings that would keep segments frame-exact (checked by benchmarks/gpu_check.sh).
- **the mezzanine** (`playhead.media.ingest`): libx264. Its pixels are the asset's identity
  (the asset id is a hash of the source and the recipe), so every machine must make the same.
- **decoding** the mezzanine (`playhead.media.decode.MezzanineReader`): FFmpeg's software
  decoder; NVDEC (``h264_cuvid``) only when ``PLAYHEAD_NVDEC=1`` opts in, until
  benchmarks/gpu_check.sh has shown on real hardware that it yields the same frames in the
  same order across seeks. The reader checks every frame's timestamp against the frame index
  either way, so a decoder that drops or reorders frames fails loudly, never silently.
"""

from __future__ import annotations

import os
from fractions import Fraction
from functools import cache
from typing import Any

import av
import numpy as np

from playhead.effects import devices
from playhead.effects.devices import Device

LIBX264 = "libx264"
NVENC = "h264_nvenc"
CUVID = "h264_cuvid"
NVDEC_ENV = "PLAYHEAD_NVDEC"
"""``1`` lets a cuda device decode with NVDEC (see the module's notes)."""

NVENC_GOP = 1_000_000
"""A GOP longer than any segment: one IDR, the first frame (x264's ``keyint=infinite``)."""


@cache
def nvenc_opens(gpu: int = 0, width: int = 256, height: int = 256) -> bool:
    """Whether PyAV can open NVENC on GPU ``gpu`` at this size and encode a frame (cached)."""
    try:
        ctx: Any = av.codec.CodecContext.create(NVENC, "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.time_base = Fraction(1, 30)
        ctx.options = {"gpu": str(gpu), "bf": "0"}
        ctx.open()
        black = np.zeros((height, width, 3), np.uint8)
        frame = av.VideoFrame.from_ndarray(black, format="rgb24").reformat(format="yuv420p")
        frame.pts = 0
        packets = [*ctx.encode(frame), *ctx.encode(None)]
        return len(packets) > 0
    except Exception:  # no GPU, no driver, no libnvidia-encode, a size NVENC refuses, …
        return False


@cache
def cuvid_opens(gpu: int = 0) -> bool:
    """Whether PyAV can open NVDEC's H.264 decoder on GPU ``gpu`` (cached)."""
    try:
        ctx: Any = av.codec.CodecContext.create(CUVID, "r")
        ctx.options = {"gpu": str(gpu)}
        ctx.open()
        return True
    except Exception:
        return False


def h264_encoder(device: Device | None = None, width: int = 256, height: int = 256) -> str:
    """``h264_nvenc`` on a cuda device where NVENC opens at this size, else ``libx264``."""
    dev = device or devices.current()
    if dev.kind == "cuda" and nvenc_opens(dev.ordinal, width, height):
        return NVENC
    return LIBX264


def h264_decoder(device: Device | None = None) -> str | None:
    """``h264_cuvid`` on a cuda device when ``PLAYHEAD_NVDEC=1`` and NVDEC opens, else None
    (FFmpeg's own software decoder)."""
    if os.environ.get(NVDEC_ENV) != "1":
        return None  # first: a reader on a CPU-only process never asks for the device
    dev = device or devices.current()
    return CUVID if dev.kind == "cuda" and cuvid_opens(dev.ordinal) else None


def nvenc_options(device: Device, quality: int, preset: str = "p5") -> dict[str, str]:
    """NVENC settings for a self-contained file: constant quality ``quality`` (≈ x264's crf),
    no B-frames (pts == dts, as in every other H.264 playhead writes), no scene-cut IDRs."""
    return {
        "gpu": str(device.ordinal),
        "preset": preset,
        "tune": "hq",
        "profile": "high",
        "rc": "vbr",
        "cq": str(quality),
        "b": "0",  # no bitrate target: quality alone
        "bf": "0",
        "no-scenecut": "1",
        "forced-idr": "1",  # a frame marked I is an IDR, as with x264
    }


def segment_options(device: Device, quality: int) -> dict[str, str]:
    """NVENC settings for an fMP4 segment: those of `nvenc_options` plus one IDR (the first
    frame) and no reordering delay, fixed whatever the segment's length, so every segment's
    init is byte-identical: x264's ``tune=zerolatency`` with ``keyint=infinite:scenecut=0``."""
    return {
        **nvenc_options(device, quality, preset="p4"),
        "tune": "ll",
        "zerolatency": "1",
        "g": str(NVENC_GOP),
    }


def open_decoder(name: str, stream: Any, device: Device | None = None) -> Any:
    """A decoder context ``name`` for ``stream``'s packets (fed by hand, not by the stream)."""
    ctx: Any = av.codec.CodecContext.create(name, "r")
    ctx.extradata = stream.codec_context.extradata
    if name == CUVID:
        ctx.options = {"gpu": str((device or devices.current()).ordinal)}
    else:
        ctx.thread_type = "AUTO"
    return ctx
