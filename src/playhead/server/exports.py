"""Exports: a whole render as a file, built from the cached segments and bands.

The segments are rendered by the workers like any other (at the export class, below every
viewer), so an export of a render someone already watched costs only the file writing:

- ``mp4`` remuxes the cached ``composite`` fragments (no re-encode);
- alpha formats and ``png-matte`` take the matte from the losslessly stored bands and the
  colour from the mezzanine (or, for effects that make their own image, the composite).
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from playhead.media.decode import MezzanineReader
from playhead.media.export import EXTENSIONS, ExportFormat, open_writer
from playhead.renders import Render
from playhead.server.catalog import Catalog
from playhead.store import Store
from playhead.worker.segment_job import init_segment, unpack_bands


@dataclass
class ExportJob:
    id: str
    render: str
    format: ExportFormat
    path: Path
    state: str = "rendering"  # rendering → writing → done | failed
    progress: float = 0.0
    error: str | None = None
    started_at: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "render": self.render,
            "format": self.format,
            "state": self.state,
            "progress": round(self.progress, 3),
            "error": self.error,
            "file": f"/api/exports/{self.id}/file" if self.state == "done" else None,
        }


class Exporter:
    def __init__(self, catalog: Catalog, store: Store, out_dir: Path) -> None:
        self.catalog = catalog
        self.store = store
        self.out_dir = out_dir
        self.jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()

    def export_id(self, render: Render, fmt: ExportFormat) -> str:
        return hashlib.sha256(f"{render.id}:{fmt}".encode()).hexdigest()[:16]

    def create(self, render: Render, fmt: ExportFormat) -> tuple[ExportJob, bool]:
        """The export job for (render, format), and whether it is new."""
        eid = self.export_id(render, fmt)
        with self._lock:
            job = self.jobs.get(eid)
            if job and job.state != "failed":
                return job, False
            path = self.out_dir / f"{eid}{EXTENSIONS[fmt]}"
            job = ExportJob(eid, render.id, fmt, path)
            if path.exists():  # written by an earlier run of the server
                job.state, job.progress = "done", 1.0
            self.jobs[eid] = job
            return job, job.state != "done"

    def write(self, job: ExportJob, render: Render) -> None:
        """Write the file once every segment is ready (called from a thread)."""
        job.state = "writing"
        asset = self.catalog.asset(render.asset)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if job.format == "mp4":
            self._remux(job, render, asset.segments)
        else:
            self._rewrite(job, render)
        job.state, job.progress = "done", 1.0

    def _remux(self, job: ExportJob, render: Render, segments: int) -> None:
        asset = self.catalog.asset(render.asset)
        parts = [init_segment(self.store, render, asset, "composite")]
        parts += [self._need(render.segment_key("composite", k)) for k in range(segments)]
        stream = io.BytesIO(b"".join(parts))
        part = job.path.with_name(job.path.name + ".part")
        with (
            av.open(stream, "r") as src,
            av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"}) as dst,
        ):
            ins = src.streams.video[0]
            outs = dst.add_stream_from_template(ins)
            for packet in src.demux(ins):
                if packet.dts is None:
                    continue
                packet.stream = outs
                dst.mux(packet)
        part.replace(job.path)

    def _rewrite(self, job: ExportJob, render: Render) -> None:
        asset = self.catalog.asset(render.asset)
        adir = self.catalog.asset_dir(render.asset)
        writer = open_writer(job.format, job.path, asset.width, asset.height, asset.fps)
        try:
            with MezzanineReader(adir.mezzanine, adir.load()[1]) as reader:
                for k in range(asset.segments):
                    bands = unpack_bands(self._need(render.bands_key(k)))
                    frames = asset.segment_range(k)
                    # the colour under the alpha: the effect's own image if it makes one
                    own_image = "rgb" in bands.get("produced", ())
                    colour = self._decode_composite(render, k) if own_image else reader.read(frames)
                    writer.write(colour, bands.get("matte"))
                    job.progress = 0.9 + 0.1 * (k + 1) / asset.segments
            writer.close()
        except BaseException:
            writer.abort()
            raise

    def _decode_composite(self, render: Render, k: int) -> np.ndarray:
        asset = self.catalog.asset(render.asset)
        init = init_segment(self.store, render, asset, "composite")
        data = init + self._need(render.segment_key("composite", k))
        with av.open(io.BytesIO(data), "r") as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])

    def _need(self, key: str) -> bytes:
        data = self.store.get(key)
        if data is None:
            raise RuntimeError(f"{key} left the cache during the export")
        return data
