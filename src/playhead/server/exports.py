"""Exports over HTTP: start one, follow its progress, download the file — from any replica.

The record lives in the store and the need on the board, so a replica that dies loses
nothing: the segments are rendered at the export class, the planner queues the export job when
the last one is ready, and a worker writes the file into the store (`worker/export_job.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from playhead import exports
from playhead.board import Board, ExportWanted
from playhead.catalog import Catalog
from playhead.errors import NotFoundError
from playhead.exports import ExportRecord
from playhead.media.export import ExportFormat
from playhead.renders import Render, check_export
from playhead.server.readiness import Readiness
from playhead.store import Store


class Exports:
    def __init__(
        self,
        store: Store,
        board: Board,
        catalog: Catalog,
        readiness: Readiness,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.board = board
        self.catalog = catalog
        self.readiness = readiness
        self.clock = clock

    async def create(self, render: Render, fmt: ExportFormat) -> ExportRecord:
        """The export of ``render`` as ``fmt``: the finished one, the one in progress, or a new
        one (also after a failure)."""
        check_export(render.effect, fmt)
        eid = exports.export_id(render, fmt)
        try:
            record: ExportRecord | None = await asyncio.to_thread(exports.load, self.store, eid)
        except NotFoundError:
            record = None
        done = record is not None and record.state == "done"
        if (
            done
            and record is not None
            and await asyncio.to_thread(self.store.exists, record.file_key)
        ):
            return record
        if record is None or record.state in ("done", "failed"):
            record = ExportRecord(id=eid, render=render.id, format=fmt)
            await asyncio.to_thread(exports.save, self.store, record)
        # in progress or new: (again) on the board, which is idempotent
        await self.board.publish(ExportWanted(export=eid, render=render.id, at=self.clock()))
        return record

    async def progress(self, record: ExportRecord) -> float:
        if record.state != "rendering":
            return {"writing": 0.9, "done": 1.0}.get(record.state, 0.0)
        render = self.catalog.render(record.render)
        segments = self.catalog.asset(render.asset).segments
        ready = await self.readiness.ready_set(render)
        return 0.9 * len(ready) / segments

    async def show(self, eid: str) -> ExportRecord:
        return await asyncio.to_thread(exports.load, self.store, eid)

    async def file(self, eid: str) -> tuple[ExportRecord, Iterator[bytes]]:
        record = await self.show(eid)
        if record.state != "done":
            raise NotFoundError(f"export {eid} is {record.state}, not done")
        chunks = await asyncio.to_thread(self.store.stream, record.file_key)
        if chunks is None:
            raise NotFoundError(f"export {eid}'s file is gone; export it again")
        return record, chunks
