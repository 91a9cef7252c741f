"""What a worker can run, by payload kind: segments and exports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from playhead.catalog import Catalog
from playhead.errors import PlayheadError
from playhead.store import Store
from playhead.worker.export_job import ExportJob
from playhead.worker.segment_job import SegmentJob


class UnknownJobError(PlayheadError, ValueError):
    status = 400
    code = "unknown_job"


class JobRunner:
    """One per worker: warm models and decoders are the worker's own (they are not
    thread-safe), the catalog and the store are shared."""

    def __init__(
        self, catalog: Catalog, store: Store, scratch: Path, batch_size: int | None = None
    ) -> None:
        self.segments = SegmentJob(catalog, store, batch_size)
        self.exports = ExportJob(catalog, store, scratch)

    def __call__(self, payload: dict[str, Any], should_stop: Callable[[], bool]) -> dict[str, Any]:
        kind = payload.get("kind")
        if kind == "segment":
            return self.segments(payload, should_stop)
        if kind == "export":
            return self.exports(payload, should_stop)
        raise UnknownJobError(f"unknown job kind {kind!r}")

    def forget_asset(self, asset_id: str) -> None:
        self.segments.pipelines.forget_asset(asset_id)

    def close(self) -> None:
        self.segments.close()
