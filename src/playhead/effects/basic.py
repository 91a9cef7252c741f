"""Effects with no model: ``passthrough`` and ``cost``, for tests and measurement."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import ClassVar, Literal, cast

import cv2
import numpy as np
from pydantic import Field

from playhead.effects.base import Band, Bands, Context, EffectParams, Frames


class PassthroughParams(EffectParams):
    pass


class _IdentityRunner:
    def run(self, frames: Frames, params: EffectParams, context: Context) -> Bands:
        return {"rgb": frames}

    def composite(self, frames: Frames, bands: Bands, params: EffectParams) -> Frames:
        return cast(Frames, bands["rgb"])


class Passthrough:
    """Identity. Renders through the whole pipeline, so it measures the pipeline's overhead."""

    name: ClassVar[str] = "passthrough"
    version: ClassVar[str] = "1"
    Params: ClassVar[type[EffectParams]] = PassthroughParams
    bands: ClassVar[tuple[Band, ...]] = ("rgb",)
    context_frames: ClassVar[int] = 0
    devices: ClassVar[tuple[str, ...]] = ("cpu",)  # OpenCV / numpy on the host
    batch_sizes: ClassVar[Mapping[str, int]] = {"cpu": 8}

    def load(self) -> _IdentityRunner:
        return _IdentityRunner()


class CostParams(EffectParams):
    ms_per_frame: float = Field(
        20.0, ge=0, le=10_000, description="time to spend per frame, in milliseconds"
    )
    mode: Literal["burn", "sleep"] = Field(
        "burn",
        description="burn: keep a CPU core busy; sleep: wait, like a job on a GPU (many such "
        "workers fit on one small machine, to measure scaling)",
    )


class _CostRunner(_IdentityRunner):
    def __init__(self) -> None:
        self._scratch = np.zeros((128, 128), np.float32)

    def run(self, frames: Frames, params: EffectParams, context: Context) -> Bands:
        p = cast(CostParams, params)
        seconds = p.ms_per_frame * len(frames) / 1000
        if p.mode == "sleep":
            time.sleep(seconds)
            return {"rgb": frames}
        deadline = time.perf_counter() + seconds
        # real CPU work in OpenCV, which releases the GIL like an inference runtime does
        while time.perf_counter() < deadline:
            cv2.GaussianBlur(self._scratch, (5, 5), 1.0, dst=self._scratch)
        return {"rgb": frames}


class Cost:
    """Identity plus a fixed CPU cost per frame.

    A benchmarking stand-in for a heavy GPU model: it keeps a core busy for ``ms_per_frame``
    per frame (releasing the GIL, as inference runtimes do) and changes no pixel, so scheduling
    and throughput can be measured with a known, tunable cost.
    """

    name: ClassVar[str] = "cost"
    version: ClassVar[str] = "1"
    Params: ClassVar[type[EffectParams]] = CostParams
    bands: ClassVar[tuple[Band, ...]] = ("rgb",)
    context_frames: ClassVar[int] = 0
    devices: ClassVar[tuple[str, ...]] = ("cpu",)  # OpenCV / numpy on the host
    batch_sizes: ClassVar[Mapping[str, int]] = {"cpu": 8}

    def load(self) -> _CostRunner:
        return _CostRunner()
