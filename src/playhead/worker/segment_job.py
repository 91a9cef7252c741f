"""One job: render segment k of a render, write its variants and bands to the store.

The payload is self-contained JSON (the render record and the segment index), so any worker
with the data directory and the store can run any job.
"""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from playhead.effects import registry
from playhead.effects.base import Runner
from playhead.media.asset import Asset, AssetDir
from playhead.media.fmp4 import SegmentEncoder
from playhead.pipeline import SegmentPipeline, SegmentResult
from playhead.renders import Render
from playhead.store import Store


def job_payload(render: Render, k: int) -> dict[str, Any]:
    return {"kind": "segment", "render": render.model_dump(mode="json"), "segment": k}


def job_id(render: Render, k: int) -> str:
    return f"{render.id}:{k}"


class PipelineCache:
    """Warm pipelines by render: one loaded model per effect, a few open decoders.

    Creation is locked; a pipeline itself is not thread-safe, so each user serialises its calls.
    """

    def __init__(self, data_dir: Path, batch_size: int = 8, capacity: int = 8) -> None:
        self.data_dir = data_dir
        self.batch_size = batch_size
        self.capacity = capacity
        self._runners: dict[str, Runner] = {}
        self._pipelines: dict[str, SegmentPipeline] = {}
        self._lock = threading.Lock()

    def get(self, render: Render) -> SegmentPipeline:
        with self._lock:
            if render.id not in self._pipelines:
                if len(self._pipelines) >= self.capacity:  # a few renders' decoders, not all
                    self._pipelines.pop(next(iter(self._pipelines))).close()
                effect = registry.get(render.effect)
                if effect.name not in self._runners:
                    self._runners[effect.name] = effect.load()
                adir = AssetDir(self.data_dir / "assets" / render.asset)
                asset, _ = adir.load()
                self._pipelines[render.id] = SegmentPipeline(
                    asset,
                    adir,
                    effect,
                    self._runners[effect.name],
                    render.effect_params(),
                    self.batch_size,
                )
            return self._pipelines[render.id]

    def close(self) -> None:
        with self._lock:
            for p in self._pipelines.values():
                p.close()
            self._pipelines.clear()


class SegmentJobRunner:
    """Runs segment jobs for one worker, keeping models and decoders warm between jobs."""

    def __init__(self, data_dir: Path, store: Store, batch_size: int = 8) -> None:
        self.store = store
        self.pipelines = PipelineCache(data_dir, batch_size)

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        render = Render.model_validate(payload["render"])
        k = int(payload["segment"])
        started = time.perf_counter()
        pipeline = self.pipelines.get(render)
        result = pipeline.render(k)
        rendered = time.perf_counter()
        self._write(render, pipeline.asset, k, result)
        return {
            "effect": render.effect,
            "frames": result.frames.count,
            "seconds": time.perf_counter() - started,
            "effect_seconds": rendered - started,
        }

    def _write(self, render: Render, asset: Asset, k: int, result: SegmentResult) -> None:
        start = result.frames.start
        self.store.put(render.bands_key(k), pack_bands(result.bands))
        if "stacked" in render.variants:
            stacked = variant_encoder(asset, "stacked").encode(start, result.stacked())
            self.store.put(render.segment_key("stacked", k), stacked.media)
        composite = variant_encoder(asset, "composite").encode(start, result.composite)
        # the composite goes last: its presence is what marks the segment ready
        self.store.put(render.segment_key("composite", k), composite.media)

    def close(self) -> None:
        self.pipelines.close()


def init_segment(store: Store, render: Render, asset: Asset, variant: str) -> bytes:
    """The variant's init segment: made once (one black frame through the same encoder)."""
    key = render.init_key(variant)
    data = store.get(key)
    if data is None:
        data = variant_encoder(asset, variant).init()
        store.put(key, data)
    return data


def variant_encoder(asset: Asset, variant: str) -> SegmentEncoder:
    height = asset.height * 2 if variant == "stacked" else asset.height
    return SegmentEncoder(asset.width, height, asset.fps)


def pack_bands(bands: dict[str, Any]) -> bytes:
    """Bands as a zip of .npy files: mattes and boxes losslessly, flow as float16.

    The ``rgb`` band is not kept: at 720p it is ~70 MB a segment raw, and the encoded variants
    already carry it.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("produced.json", json.dumps(sorted(bands)))  # rgb included, though not kept
        for name, value in bands.items():
            if name == "rgb":
                continue
            if name == "boxes":
                z.writestr("boxes.json", json.dumps(value))
                continue
            array = np.asarray(value)
            if array.dtype == np.float32:
                array = array.astype(np.float16)
            npy = io.BytesIO()
            np.save(npy, array)
            z.writestr(f"{name}.npy", npy.getvalue())
    return buf.getvalue()


def unpack_bands(data: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name == "produced.json":
                out["produced"] = json.loads(z.read(name))
            elif name == "boxes.json":
                out["boxes"] = json.loads(z.read(name))
            else:
                out[name.removesuffix(".npy")] = np.load(io.BytesIO(z.read(name)))
    return out
