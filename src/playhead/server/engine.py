"""The engine: sessions, the scheduler, the queue, the store and the in-process workers.

The event loop owns all engine state. Worker threads touch it only through the queue's
change hook, which hands each change to the loop (``call_soon_threadsafe``); the loop then
updates segment readiness, wakes waiting requests, tells watching sessions and replans.
Everything here can be rebuilt from the queue and the store: sessions are re-reported by their
browsers, readiness is read back from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from playhead.queue import Job, JobState, MemoryQueue, WorkQueue
from playhead.renders import Render
from playhead.scheduler import (
    CostModel,
    Priority,
    RenderInfo,
    RenderState,
    SegmentState,
    Session,
    encode_priority,
    get_policy,
    parse_job_id,
)
from playhead.server.catalog import Catalog
from playhead.server.config import ServeConfig
from playhead.server.exports import Exporter
from playhead.server.frames import FrameService
from playhead.server.metrics import Metrics
from playhead.store import LocalStore, Store
from playhead.worker.loop import Worker
from playhead.worker.segment_job import SegmentJobRunner, job_payload

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]

QUEUE_TO_SEGMENT = {
    JobState.QUEUED: SegmentState.QUEUED,
    JobState.BLOCKED: SegmentState.QUEUED,
    JobState.RUNNING: SegmentState.RUNNING,
    JobState.FAILED: SegmentState.FAILED,
}


@dataclass
class Viewer:
    """A session plus where it came from: a WebSocket, or inferred from segment requests."""

    session: Session
    inferred: bool = False
    listeners: list[Listener] = field(default_factory=list)


class Engine:
    def __init__(self, config: ServeConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.catalog = Catalog(config.data_dir)
        self.store: Store = LocalStore(config.data_dir / "cache", config.cache_bytes)
        self.queue: WorkQueue = MemoryQueue(on_change=self._on_queue_change)
        self.policy = get_policy(config.policy)
        self.cost = CostModel()
        self.metrics = Metrics()
        self.viewers: dict[str, Viewer] = {}
        self.urgent: dict[str, dict[int, float]] = defaultdict(dict)  # seeks
        self.requested: dict[str, dict[int, float]] = defaultdict(dict)  # HTTP, not ready
        self.exports: dict[str, float] = {}  # render id → when an export asked for it
        self.deadlines: dict[str, float] = {}  # job id → the deadline it was planned for
        self.submitted_at: dict[str, float] = {}
        self.claimed_at: dict[str, float] = {}  # running job id → when a worker took it
        self._ready: dict[str, set[int]] = {}
        self._waiters: dict[tuple[str, int], asyncio.Event] = {}
        self._watchers: dict[str, set[str]] = defaultdict(set)  # render → viewer ids
        self._wake_workers = threading.Event()
        self._replan = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.workers: list[Worker] = []
        self.frames = FrameService(config.data_dir)
        self.exporter = Exporter(self.catalog, self.store, config.data_dir / "exports")
        self._tasks: set[asyncio.Task[None]] = set()
        self._someone_playing = False  # read by worker threads: a plain bool, set by the loop

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for i in range(self.config.workers):
            runner = SegmentJobRunner(self.config.data_dir, self.store, self.config.batch_size)
            # every worker but the first keeps out of far-ahead prefetch: one is then free
            # (or soon free) when a seek makes a segment urgent
            limit = self._headroom if i > 0 and self.config.policy == "deadline" else None
            worker = Worker(
                f"worker-{i}",
                self.queue,
                runner,
                self._wake_workers,
                self.config.lease_s,
                limit=limit,
            )
            worker.start()
            self.workers.append(worker)
        self.metrics.workers.set(len(self.workers))
        self._task = asyncio.create_task(self._planner(), name="planner")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work owned by the engine: cancelled and awaited on stop."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _headroom(self, now: float) -> float:
        if not self._someone_playing:  # nobody to seek: exports and prefetch get every worker
            return math.inf
        return encode_priority(Priority.PLAYING, now + self.config.headroom_s)

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await asyncio.to_thread(self._stop_workers)

    def _stop_workers(self) -> None:
        for w in self.workers:  # all stop claiming at once, then each finishes its job
            w.request_stop()
        for w in self.workers:
            w.stop(timeout=self.config.lease_s)

    # ---- readiness ----------------------------------------------------------------------

    def ready_set(self, render: Render) -> set[int]:
        if render.id not in self._ready:
            segments = self.catalog.asset(render.asset).segments
            self._ready[render.id] = {
                k for k in range(segments) if self.store.exists(render.segment_key("composite", k))
            }
        return self._ready[render.id]

    def is_ready(self, render: Render, k: int) -> bool:
        if k in self.ready_set(render):
            if self.store.exists(render.segment_key("composite", k)):
                return True
            self._ready[render.id].discard(k)  # evicted from the cache: render it again
        return False

    def segment_state(self, render: Render, k: int) -> SegmentState:
        if self.is_ready(render, k):
            return SegmentState.READY
        state = self.queue.state(f"{render.id}:{k}")
        return QUEUE_TO_SEGMENT.get(state, SegmentState.IDLE) if state else SegmentState.IDLE

    def segment_states(self, render: Render) -> list[SegmentState]:
        segments = self.catalog.asset(render.asset).segments
        return [self.segment_state(render, k) for k in range(segments)]

    async def wait_ready(self, render: Render, k: int, timeout: float) -> bool:
        """Tell the scheduler a player asked for segment k, and wait (bounded) until it is ready."""
        if self.is_ready(render, k):
            return True
        key = (render.id, k)
        event = self._waiters.setdefault(key, asyncio.Event())
        self.requested[render.id].setdefault(k, self.clock())
        self.request_replan()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.is_ready(render, k)

    # ---- sessions -----------------------------------------------------------------------

    def report(self, viewer_id: str, session: Session, inferred: bool = False) -> None:
        """A playhead report: a seek makes the new playhead's segment urgent at once."""
        old = self.viewers.get(viewer_id)
        render = self.catalog.render(session.render)
        info = self.render_info(render)
        if old is None or old.session.render != session.render:
            self._watchers[session.render].add(viewer_id)
            if old is not None:
                self._watchers[old.session.render].discard(viewer_id)
            viewer = Viewer(session, inferred, old.listeners if old else [])
            self.viewers[viewer_id] = viewer
            self._mark_urgent(render, info.segment_of(session.playhead))
        else:
            if not inferred and self._is_seek(old.session, session, info):
                self._mark_urgent(render, info.segment_of(session.playhead))
            old.session = session
            old.inferred = inferred
        self.metrics.sessions.set(len(self.viewers))
        self.request_replan()

    def watched(self, render_id: str) -> list[Session]:
        """Sessions reported over the WebSocket (not inferred) watching ``render_id``."""
        return [
            v.session
            for vid in self._watchers.get(render_id, ())
            if (v := self.viewers.get(vid)) is not None and not v.inferred
        ]

    def _is_seek(self, old: Session, new: Session, info: RenderInfo) -> bool:
        elapsed = max(0.0, new.reported_at - old.reported_at)
        expected = old.playhead + (elapsed * info.fps * old.rate if old.moving else 0)
        return abs(new.playhead - expected) > info.segment_frames

    def _mark_urgent(self, render: Render, k: int) -> None:
        if not self.is_ready(render, k):
            self.urgent[render.id].setdefault(k, self.clock())

    def listen(self, viewer_id: str, listener: Listener) -> None:
        if viewer_id in self.viewers:
            self.viewers[viewer_id].listeners.append(listener)

    def forget(self, viewer_id: str) -> None:
        viewer = self.viewers.pop(viewer_id, None)
        if viewer:
            self._watchers[viewer.session.render].discard(viewer_id)
        self.metrics.sessions.set(len(self.viewers))
        self.request_replan()

    def render_info(self, render: Render) -> RenderInfo:
        asset = self.catalog.asset(render.asset)
        return RenderInfo(
            render.id, float(asset.fps), asset.segment_frames, asset.frames, render.effect
        )

    # ---- planning -----------------------------------------------------------------------

    def request_replan(self) -> None:
        if self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._replan.set()
        else:
            self._loop.call_soon_threadsafe(self._replan.set)

    async def _planner(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._replan.wait(), self.config.tick_s)
            self._replan.clear()
            try:
                self.replan()
            except Exception:  # a planning bug must not stop playback for everyone
                log.exception("replanning failed")

    def replan(self) -> None:
        now = self.clock()
        self.queue.reap(now)
        self._expire_inferred(now)
        renders: dict[str, RenderState] = {}
        needed = {v.session.render for v in self.viewers.values()}
        needed |= {r for r, u in self.urgent.items() if u} | set(self.exports)
        needed |= {r for r, u in self.requested.items() if u}
        for render_id in needed:
            render = self.catalog.render(render_id)
            info = self.render_info(render)
            states: dict[int, SegmentState] = {}
            running_since: dict[int, float] = {}
            for k in range(info.segments):
                state = self.segment_state(render, k)
                if state is not SegmentState.IDLE:
                    states[k] = state
                if state is SegmentState.RUNNING and f"{render_id}:{k}" in self.claimed_at:
                    running_since[k] = self.claimed_at[f"{render_id}:{k}"]
            for pending in (self.urgent, self.requested):
                pending[render_id] = {
                    k: t
                    for k, t in pending[render_id].items()
                    if states.get(k) is not SegmentState.READY
                }
            renders[render_id] = RenderState(
                info,
                states,
                running_since,
                self.urgent[render_id],
                self.requested[render_id],
                self.exports.get(render_id),
            )
        queued = {job.id: job.priority for job in self.queue.pending()}
        sessions = [v.session for v in self.viewers.values()]
        self._someone_playing = any(s.moving for s in sessions)
        plan = self.policy.plan(now, sessions, renders, queued, self.cost, len(self.workers))
        for spec in plan.submit:
            render = self.catalog.render(spec.render)
            job = Job(
                spec.job_id, job_payload(render, spec.segment), spec.priority, spec.depends_on
            )
            self.queue.submit(job, now)
            self.submitted_at[spec.job_id] = now
            if spec.deadline is not None:
                self.deadlines[spec.job_id] = spec.deadline
        for job_id, priority in plan.reprioritise:
            self.queue.reprioritise(job_id, priority)
        for job_id in plan.cancel:
            self.queue.cancel(job_id)
        if plan.submit or plan.reprioritise:
            self._wake_workers.set()
        self.refresh_gauges()

    def _expire_inferred(self, now: float) -> None:
        ttl = self.config.inferred_session_ttl_s
        for vid in [
            vid
            for vid, v in self.viewers.items()
            if v.inferred and now - v.session.reported_at > ttl
        ]:
            self.forget(vid)

    def source_render(self, asset_id: str) -> Render:
        render = Render.create(self.catalog.asset(asset_id), "passthrough", {})
        self.catalog.add_render(render)
        return render

    def refresh_gauges(self) -> None:
        for state, count in self.queue.stats().items():
            self.metrics.jobs.labels(state=state).set(count)
        if self.workers:
            self.metrics.busy.set(sum(w.busy_ratio() for w in self.workers) / len(self.workers))
        self.metrics.store_bytes.set(self.store.size())

    # ---- completions (from worker threads) -----------------------------------------------

    def _on_queue_change(self, job_id: str, state: JobState) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._changed, job_id, state, self.clock())

    def _changed(self, job_id: str, state: JobState, at: float) -> None:
        try:
            render_id, k = parse_job_id(job_id)
        except ValueError:
            return
        if state is JobState.RUNNING:
            self.claimed_at[job_id] = at
            if job_id in self.submitted_at:
                self.metrics.queue_wait.observe(max(0.0, at - self.submitted_at.pop(job_id)))
        else:
            self.claimed_at.pop(job_id, None)
        if state is JobState.CANCELLED:
            self.submitted_at.pop(job_id, None)
            self.deadlines.pop(job_id, None)
        if state is JobState.DONE:
            self._ready.setdefault(render_id, set()).add(k)
            self.urgent[render_id].pop(k, None)
            self.requested[render_id].pop(k, None)
            result = self.queue.result(job_id) or {}
            if result.get("frames"):
                self.cost.update(result["effect"], result["seconds"], result["frames"])
                self.metrics.render_seconds.labels(effect=result["effect"]).observe(
                    result["seconds"]
                )
            deadline = self.deadlines.pop(job_id, None)
            if deadline is not None:
                self.metrics.lead_time.observe(deadline - at)
                if at > deadline:
                    self.metrics.deadline_misses.inc()
        if state in (JobState.DONE, JobState.FAILED):
            event = self._waiters.pop((render_id, k), None)
            if event:
                event.set()
        segment = (
            SegmentState.READY
            if state is JobState.DONE
            else QUEUE_TO_SEGMENT.get(state, SegmentState.IDLE)
        )
        message = {"type": "segment", "render": render_id, "index": k, "state": segment.value}
        for vid in list(self._watchers.get(render_id, ())):
            viewer = self.viewers.get(vid)
            for listener in viewer.listeners if viewer else ():
                listener(message)
        self.request_replan()

    def stats(self) -> dict[str, Any]:
        return {
            "jobs": self.queue.stats(),
            "workers": len(self.workers),
            "busy": [round(w.busy_ratio(), 3) for w in self.workers],
            "render_fps": {e: round(1 / s, 1) for e, s in self.cost.per_frame.items() if s > 0},
            "sessions": len(self.viewers),
        }
