"""Segment jobs: render segment k of a render, write its bands and variants to the store.

The payload is self-contained JSON (the render record and the segment index), so any worker
with the store can run any job; the mezzanine comes through the local read-through cache.
"""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from playhead.catalog import Catalog
from playhead.effects import registry
from playhead.effects.base import Runner
from playhead.media.asset import Asset
from playhead.media.fmp4 import SegmentEncoder
from playhead.pipeline import SegmentPipeline, SegmentResult
from playhead.renders import Render
from playhead.store import Store


def segment_payload(render: Render, k: int) -> dict[str, Any]:
    return {"kind": "segment", "render": render.model_dump(mode="json"), "segment": k}


class PipelineCache:
    """Warm pipelines by render: one loaded model per effect, a few open decoders.

    Models and decoders are not thread-safe, so the whole cache is lent to one caller at a time
    (`use`): nobody can close a pipeline another thread is decoding with. Each worker has its
    own cache; the single-frame endpoint has one for all its requests.
    """

    def __init__(self, catalog: Catalog, batch_size: int | None = None, capacity: int = 8) -> None:
        self.catalog = catalog
        self.batch_size = batch_size
        self.capacity = capacity
        self._runners: dict[str, Runner] = {}
        self._pipelines: OrderedDict[str, SegmentPipeline] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def use(self, render: Render) -> Iterator[SegmentPipeline]:
        with self._lock:
            yield self._get(render)

    def _get(self, render: Render) -> SegmentPipeline:
        if render.id in self._pipelines:
            self._pipelines.move_to_end(render.id)
            return self._pipelines[render.id]
        while len(self._pipelines) >= self.capacity:  # a few renders' decoders, not all
            self._pipelines.popitem(last=False)[1].close()
        effect = registry.get(render.effect)
        if effect.name not in self._runners:
            self._runners[effect.name] = effect.load()
        adir = self.catalog.local(render.asset)
        asset, _ = adir.load()
        pipeline = SegmentPipeline(
            asset, adir, effect, self._runners[effect.name], render.effect_params(), self.batch_size
        )
        self._pipelines[render.id] = pipeline
        return pipeline

    def forget_asset(self, asset_id: str) -> None:
        with self._lock:
            for rid in [r for r, p in self._pipelines.items() if p.asset.id == asset_id]:
                self._pipelines.pop(rid).close()

    def close(self) -> None:
        with self._lock:
            for p in self._pipelines.values():
                p.close()
            self._pipelines.clear()


class SegmentJob:
    """Renders segment jobs for one worker, keeping models and decoders warm between jobs."""

    def __init__(self, catalog: Catalog, store: Store, batch_size: int | None = None) -> None:
        self.store = store
        self.pipelines = PipelineCache(catalog, batch_size)

    def __call__(self, payload: dict[str, Any], should_stop: Callable[[], bool]) -> dict[str, Any]:
        render = Render.model_validate(payload["render"])
        k = int(payload["segment"])
        started = time.perf_counter()
        with self.pipelines.use(render) as pipeline:
            result = pipeline.render(k, should_stop)
            asset = pipeline.asset
        rendered = time.perf_counter()
        write_segment(self.store, render, asset, k, result)
        return {
            "effect": render.effect,
            "frames": result.frames.count,
            "seconds": time.perf_counter() - started,
            "effect_seconds": rendered - started,
        }

    def close(self) -> None:
        self.pipelines.close()


def write_segment(
    store: Store, render: Render, asset: Asset, k: int, result: SegmentResult
) -> None:
    """Bands, then the stacked variant, then the composite: its presence marks the unit ready."""
    start = result.frames.start
    store.put(render.bands_key(k), pack_bands(result.bands))
    if "stacked" in render.variants:
        stacked = variant_encoder(asset, "stacked").encode(start, result.stacked())
        store.put(render.segment_key("stacked", k), stacked.media)
    composite = variant_encoder(asset, "composite").encode(start, result.composite)
    store.put(render.segment_key("composite", k), composite.media)


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
