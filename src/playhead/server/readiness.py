"""Which segments are ready, and waiting for the ones that are not.

The truth is the store: a segment is ready when its ``composite.m4s`` is there, whoever wrote
it. This replica keeps a hint of each watched render's ready set (listed from the store once,
then kept current by the queue's changes, which reach every replica), and of the state of the
jobs in flight, for the timeline. A request for a missing segment waits here for the change
that finishes it — made by a worker anywhere — and gets the failure's cause at once if the
segment failed for good (`failed.json` in the store, written by the planner).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from playhead.catalog import Catalog
from playhead.errors import PlayheadError
from playhead.queue import Change, JobState, WorkQueue
from playhead.renders import Render
from playhead.scheduler import SegmentState, parse_job_id
from playhead.store import Store
from playhead.store.layout import cache_prefix, failure_key, ready_segment

log = logging.getLogger(__name__)

SegmentListener = Callable[[str, int, SegmentState], None]

_JOB_STATES = {
    JobState.QUEUED: SegmentState.QUEUED,
    JobState.RUNNING: SegmentState.RUNNING,
    JobState.FAILED: SegmentState.FAILED,
    JobState.CANCELLED: SegmentState.IDLE,
    JobState.DONE: SegmentState.READY,
}


class SegmentFailedError(PlayheadError, RuntimeError):
    """The segment could not be rendered; the message names the cause."""

    status = 500
    code = "render_failed"


class Readiness:
    def __init__(
        self,
        store: Store,
        queue: WorkQueue,
        catalog: Catalog,
        failure_cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.queue = queue
        self.catalog = catalog
        self.failure_cooldown_s = failure_cooldown_s
        self.clock = clock
        self._ready: dict[str, set[int]] = {}  # render → ready segments (a hint)
        self._jobs: dict[str, dict[int, SegmentState]] = defaultdict(dict)  # in flight
        self._waiters: dict[tuple[str, int], list[asyncio.Future[str | None]]] = defaultdict(list)
        self._listeners: list[SegmentListener] = []
        self._stop_watching: Callable[[], None] | None = None

    def start(self) -> None:
        self._stop_watching = self.queue.watch(self._on_change)

    def stop(self) -> None:
        if self._stop_watching:
            self._stop_watching()
        for futures in self._waiters.values():
            for f in futures:
                if not f.done():
                    f.cancel()

    def listen(self, listener: SegmentListener) -> None:
        """Be told every segment state change: (render, k, state)."""
        self._listeners.append(listener)

    # ---- the hint ---------------------------------------------------------------------------

    async def ready_set(self, render: Render) -> set[int]:
        """The ready segments of ``render`` (listed from the store the first time)."""
        if render.id not in self._ready:
            found = await asyncio.to_thread(self._list_ready, render)
            self._ready.setdefault(render.id, set()).update(found)
        return self._ready[render.id]

    def _list_ready(self, render: Render) -> set[int]:
        # its own prefix holds all its segments, unless they live in units shared by renders
        units: dict[str, set[int] | None] = {render.id: None}
        if render.units:
            units = dict(render.units_of_segments())
        found: set[int] = set()
        for unit, segments in units.items():
            for key in self.store.keys(cache_prefix(unit)):
                seg = ready_segment(key)
                if seg is not None and (segments is None or seg[1] in segments):
                    found.add(seg[1])
        return found

    def forget(self, render_id: str) -> None:
        self._ready.pop(render_id, None)
        self._jobs.pop(render_id, None)

    async def states(self, render: Render) -> list[SegmentState]:
        ready = await self.ready_set(render)
        jobs = self._jobs.get(render.id, {})
        segments = self.catalog.asset(render.asset).segments
        return [
            SegmentState.READY if k in ready else jobs.get(k, SegmentState.IDLE)
            for k in range(segments)
        ]

    # ---- segments ---------------------------------------------------------------------------

    async def fetch(self, render: Render, variant: str, k: int) -> bytes | None:
        """The segment's bytes from the store, or None (and the hint corrected)."""
        data = await asyncio.to_thread(self.store.get, render.segment_key(variant, k))
        ready = self._ready.get(render.id)
        if ready is not None:
            if data is None:
                ready.discard(k)  # evicted, or never there
            else:
                ready.add(k)
        return data

    async def failure(self, render: Render, k: int) -> str | None:
        """Why segment k failed for good, if it did recently."""
        raw = await asyncio.to_thread(self.store.get, failure_key(render.id, k))
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            if self.clock() - float(record["at"]) > self.failure_cooldown_s:
                return None  # cooled down: it may be tried again
            return str(record["error"])
        except (ValueError, KeyError, TypeError):
            return None

    async def wait(self, render: Render, k: int, timeout: float) -> bool:
        """Wait (bounded) for segment k: True when it became ready; `SegmentFailedError` with
        the cause when it failed; False on timeout."""
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters[(render.id, k)]
        waiters.append(future)
        try:
            # it may have become ready between the caller's look and this wait
            if await asyncio.to_thread(self.store.exists, render.segment_key("composite", k)):
                return True
            error = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return False
        finally:
            waiters.remove(future)
            if not waiters:
                self._waiters.pop((render.id, k), None)
        if error is not None:
            raise SegmentFailedError(f"segment {k} of render {render.id} failed: {error}")
        return True

    def _on_change(self, change: Change) -> None:
        try:
            render_id, k = parse_job_id(change.job_id)
        except ValueError:
            return
        state = _JOB_STATES[change.state]
        jobs = self._jobs[render_id]
        if state in (SegmentState.QUEUED, SegmentState.RUNNING, SegmentState.FAILED):
            jobs[k] = state
        else:
            jobs.pop(k, None)
            if not jobs:
                self._jobs.pop(render_id, None)
        if state is SegmentState.READY and render_id in self._ready:
            self._ready[render_id].add(k)
        if change.state in (JobState.DONE, JobState.FAILED):
            error = (change.error or "failed") if change.state is JobState.FAILED else None
            for future in self._waiters.get((render_id, k), []):
                if not future.done():
                    future.set_result(error)
        for listener in list(self._listeners):
            try:
                listener(render_id, k, state)
            except Exception:  # one listener's bug must not silence the others
                log.exception("segment listener failed")
