"""Export jobs: once every segment of a render is in the store, write the export file.

- ``mp4`` remuxes the cached ``composite`` fragments (no re-encode);
- alpha formats and ``png-matte`` take the matte from the losslessly stored bands and the
  colour from the mezzanine (or, for effects that make their own image, the composite).

The file is written locally, then put in the store; the record says ``writing`` meanwhile and
``done`` once the file is there, so any replica can serve it.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np

from playhead import exports
from playhead.catalog import Catalog
from playhead.errors import PlayheadError
from playhead.media.decode import MezzanineReader
from playhead.media.export import EXTENSIONS, open_writer
from playhead.renders import Render
from playhead.store import Store
from playhead.worker.segment_job import init_segment, unpack_bands


class SegmentMissingError(PlayheadError, RuntimeError):
    """A segment left the cache between "all ready" and the export reading it."""

    status = 503
    code = "segment_missing"


def export_payload(export_id: str) -> dict[str, Any]:
    return {"kind": "export", "export": export_id}


class ExportJob:
    def __init__(self, catalog: Catalog, store: Store, scratch: Path) -> None:
        self.catalog = catalog
        self.store = store
        self.scratch = scratch

    def __call__(self, payload: dict[str, Any], should_stop: Callable[[], bool]) -> dict[str, Any]:
        record = exports.load(self.store, str(payload["export"]))
        if record.state == "done" and self.store.exists(record.file_key):
            return {"export": record.id}
        exports.save(self.store, record.model_copy(update={"state": "writing", "error": None}))
        render = self.catalog.render(record.render)
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            path = Path(tmp) / f"export{EXTENSIONS[record.format]}"
            if record.format == "mp4":
                self._remux(render, path)
            else:
                self._rewrite(render, record.format, path)
            self.store.put_file(record.file_key, path, overwrite=True)
        exports.save(self.store, record.model_copy(update={"state": "done", "error": None}))
        return {"export": record.id}

    def _need(self, key: str) -> bytes:
        data = self.store.get(key)
        if data is None:
            raise SegmentMissingError(f"{key} left the cache during the export")
        return data

    def _remux(self, render: Render, path: Path) -> None:
        asset = self.catalog.asset(render.asset)
        parts = [init_segment(self.store, render, asset, "composite")]
        parts += [self._need(render.segment_key("composite", k)) for k in range(asset.segments)]
        with (
            av.open(io.BytesIO(b"".join(parts)), "r") as src,
            av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as dst,
        ):
            ins = src.streams.video[0]
            outs = dst.add_stream_from_template(ins)
            for packet in src.demux(ins):
                if packet.dts is None:
                    continue
                packet.stream = outs
                dst.mux(packet)

    def _rewrite(self, render: Render, fmt: Any, path: Path) -> None:
        asset = self.catalog.asset(render.asset)
        adir = self.catalog.local(render.asset)
        writer = open_writer(fmt, path, asset.width, asset.height, asset.fps)
        try:
            with MezzanineReader(adir.mezzanine, adir.load()[1]) as reader:
                for k in range(asset.segments):
                    bands = unpack_bands(self._need(render.bands_key(k)))
                    # the colour under the alpha: the effect's own image if it makes one
                    own_image = "rgb" in bands.get("produced", ())
                    colour = (
                        self._decode_composite(render, k)
                        if own_image
                        else reader.read(asset.segment_range(k))
                    )
                    writer.write(colour, bands.get("matte"))
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
