"""Export records: a whole render as a file, tracked in the store so any replica can answer.

An export is requested through the API (a record in state ``rendering`` and a need on the
board), its segments are rendered by the workers at the export class, and once all are ready
the planner queues an export job that a worker turns into the file (``writing`` → ``done``).
A segment that fails for good fails the export with its cause. Nothing lives in one process.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from playhead.errors import NotFoundError
from playhead.media.export import EXTENSIONS, ExportFormat
from playhead.renders import Render
from playhead.store import Store
from playhead.store.layout import export_file, export_record

ExportState = Literal["rendering", "writing", "done", "failed"]
MEDIA_TYPES = {"mp4": "video/mp4", "mov-alpha": "video/quicktime", "webm-alpha": "video/webm"}


class ExportRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    render: str
    format: ExportFormat
    state: ExportState = "rendering"
    error: str | None = None
    created_at: float = Field(default_factory=time.time)

    @property
    def file_key(self) -> str:
        return export_file(self.id, EXTENSIONS[self.format])

    def public(self, progress: float) -> dict[str, Any]:
        done = self.state == "done"
        return {
            "id": self.id,
            "render": self.render,
            "format": self.format,
            "state": self.state,
            "progress": round(1.0 if done else progress, 3),
            "error": self.error,
            "file": f"/api/exports/{self.id}/file" if done else None,
        }


def export_id(render: Render, fmt: ExportFormat) -> str:
    return hashlib.sha256(f"{render.id}:{fmt}".encode()).hexdigest()[:16]


def load(store: Store, eid: str) -> ExportRecord:
    if not (eid.isascii() and eid.isalnum() and len(eid) <= 64):
        raise NotFoundError(f"no export {eid[:80]!r}")
    data = store.get(export_record(eid))
    if data is None:
        raise NotFoundError(f"no export {eid!r}")
    return ExportRecord.model_validate_json(data)


def save(store: Store, record: ExportRecord) -> None:
    store.put(export_record(record.id), record.model_dump_json().encode(), overwrite=True)
