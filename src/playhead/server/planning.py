"""Planning for the whole fleet, by the one replica that holds the planning lease.

Every replica listens to the board (its viewers' needs, from every replica) and to the queue
(every job's changes, from every worker), but only the replica holding the lease plans: a
single planner sees every viewer, so no replica cancels work another one's viewers need, and
fair shares are computed over the whole fleet. A replica that takes the lease over rebuilds
the planner from the board's snapshot and the queue, then goes on event by event; if the
planner dies, another takes over when its lease lapses (a few seconds), and the queue keeps
feeding the workers meanwhile.

All planning happens in one task, in the order things happened: board events, queue changes
and the lease's own ticks go through one bounded inbox. If the inbox overflows, the planner
rebuilds from the shared state instead of planning from a partial picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from playhead import exports
from playhead.board import (
    AssetDeleted,
    Board,
    BoardEvent,
    ExportOver,
    ExportWanted,
    RequestDone,
    Requested,
    SessionLeft,
    SessionReport,
    WorkerInfo,
)
from playhead.catalog import Catalog
from playhead.errors import NotFoundError, PlayheadError
from playhead.queue import Change, Job, JobState, WorkQueue
from playhead.scheduler import (
    CostModel,
    PolicyBase,
    Priority,
    RenderInfo,
    Session,
    encode_priority,
    parse_job_id,
)
from playhead.scheduler.capacity import ScalingRule, Trend, demand
from playhead.scheduler.ops import Ops
from playhead.scheduler.planner import Planner
from playhead.server.metrics import Metrics
from playhead.server.readiness import Readiness
from playhead.store import Store
from playhead.store.layout import failure_key
from playhead.worker.export_job import export_payload
from playhead.worker.segment_job import segment_payload

log = logging.getLogger(__name__)

INBOX = 100_000  # events waiting to be planned; past that, rebuild from the shared state
QUEUE_CALLS = 8  # queue calls in flight at once (a seek's plan is dozens; Redis pools are finite)
EXPORT_JOB = "export:"


@dataclass(frozen=True)
class _Control:
    what: str  # "lead", "unlead", "tick", "resync"


Item = BoardEvent | Change | _Control


@dataclass(frozen=True)
class PlanningConfig:
    lease_ttl_s: float = 3.0  # a dead planner is replaced within this
    tick_s: float = 1.0  # housekeeping: cool-downs, workers, dead replicas, stalled jobs
    resync_s: float = 300.0  # rebuild the mirror from the queue and replan everything
    failure_cooldown_s: float = 30.0
    fleet_ttl_s: float = 15.0  # the published demand outlives a planner's failover, no more
    scaling: ScalingRule = field(default_factory=ScalingRule)


@dataclass(frozen=True)
class Fleet:
    """The device classes of a fleet's workers, and which class renders an effect."""

    classes: tuple[str, ...] = ("cpu",)
    klass_of: Callable[[str], str] = lambda effect: "cpu"


class PlanningService:
    def __init__(
        self,
        board: Board,
        queue: WorkQueue,
        catalog: Catalog,
        readiness: Readiness,
        store: Store,
        policy: PolicyBase,
        metrics: Metrics,
        config: PlanningConfig = PlanningConfig(),
        clock: Callable[[], float] = time.time,
        fleet: Fleet = Fleet(),
    ) -> None:
        self.board = board
        self.queue = queue
        self.catalog = catalog
        self.readiness = readiness
        self.store = store
        self.policy = policy
        self.metrics = metrics
        self.config = config
        self.clock = clock
        self.fleet = fleet
        self.trend = Trend()
        self.cost = CostModel()  # kept across terms: every replica sees every completion
        self.planner: Planner | None = None
        self.someone_playing = False
        self._inbox: asyncio.Queue[Item] = asyncio.Queue(INBOX)
        self._overflow = False
        self._submitted_at: dict[str, float] = {}
        self._replica_of: dict[str, str] = {}  # session / request owner → its replica
        self._inferred: set[str] = set()  # sessions guessed from segment requests
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: list[Callable[[], None]] = []
        self._last_resync = 0.0

    @property
    def leading(self) -> bool:
        return self.planner is not None

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe = [self.board.listen(self._put), self.queue.watch(self._put)]
        self._tasks = [
            asyncio.create_task(self._plan(), name="planner"),
            asyncio.create_task(self._keep_lease(), name="planning-lease"),
        ]

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self.leading:
            with contextlib.suppress(Exception):
                await self.board.resign()

    def _put(self, item: Item) -> None:
        try:
            self._inbox.put_nowait(item)
        except asyncio.QueueFull:
            self._overflow = True

    # ---- the lease --------------------------------------------------------------------------

    async def _keep_lease(self) -> None:
        interval = min(self.config.tick_s, self.config.lease_ttl_s / 3)
        while True:
            try:
                await self.board.heartbeat(self.config.lease_ttl_s * 2)
                holds = await self.board.lead(self.config.lease_ttl_s)
            except PlayheadError as e:  # Redis unreachable: we cannot know we still lead
                log.warning("planning lease: %s", e.message)
                holds = False
            if holds != self.leading:
                self._put(_Control("lead" if holds else "unlead"))
            if holds:
                self._put(_Control("tick"))
            await asyncio.sleep(interval)

    # ---- the one planning task --------------------------------------------------------------

    async def _plan(self) -> None:
        while True:
            item = await self._inbox.get()
            try:
                await self._handle(item)
                if self._overflow and self.leading:
                    self._overflow = False
                    log.warning("planning inbox overflowed: rebuilding from the shared state")
                    await self._take_over()
            except asyncio.CancelledError:
                raise
            except Exception:  # a planning bug must not stop planning for everyone
                log.exception("planning failed on %r", item)

    async def _handle(self, item: Item) -> None:
        if isinstance(item, _Control):
            if item.what == "lead":
                await self._take_over()
            elif item.what == "unlead":
                log.info("%s: no longer planning", self.board.replica)
                self.planner = None
            elif item.what == "tick" and self.planner is not None:
                await self._tick()
            return
        if self.planner is None:
            # not planning: the snapshot at take-over covers what we drop here; but keep the
            # cost model warm, so a take-over plans with measured costs
            if isinstance(item, Change) and item.state is JobState.DONE:
                _learn(self.cost, item.result)
            return
        now = self.clock()
        if isinstance(item, Change):
            await self._changed(self.planner, item, now)
        else:
            await self._board_event(self.planner, item, now)

    async def _take_over(self) -> None:
        log.info("%s: planning", self.board.replica)
        self.planner = planner = Planner(
            self.policy, self.cost, failure_cooldown_s=self.config.failure_cooldown_s
        )
        self._replica_of.clear()
        self._inferred.clear()
        now = self.clock()
        await self._apply(planner.set_workers(len(await self.board.workers()), now), now)
        for event in await self.board.snapshot():
            await self._board_event(planner, event, now, apply=False)
        await self._resync(planner, now)

    async def _resync(self, planner: Planner, now: float) -> None:
        waiting = {job.id: job.priority for job in await self.queue.pending()}
        running = await self.queue.running()
        for job_id in [*running, *waiting]:
            if not job_id.startswith(EXPORT_JOB):
                await self._know(planner, job_id.rpartition(":")[0])
        await self._apply(planner.resync(waiting, running, now), now)
        self._last_resync = now

    async def _tick(self) -> None:
        planner = self.planner
        assert planner is not None
        now = self.clock()
        workers = await self.board.workers()
        await self._apply(planner.set_workers(len(workers), now), now)
        await self._apply(planner.tick(now), now)
        self.someone_playing = any(s.moving for s in planner.sessions.values())
        await self.board.set_playing(self.someone_playing, 3 * self.config.tick_s)
        await self._publish_fleet(planner, workers, now)
        replicas = set(self._replica_of.values()) - {self.board.replica}
        for dead in await self.board.dead_replicas(replicas):
            log.warning("replica %s is gone: dropping its viewers and requests", dead)
            await self.board.forget_replica(dead)  # publishes what undoes its needs
            self._replica_of = {k: r for k, r in self._replica_of.items() if r != dead}
        reaped = await self.queue.reap()
        if reaped:
            log.warning("leases expired on %s: queued again", ", ".join(reaped))
        if now - self._last_resync > self.config.resync_s:
            await self._resync(planner, now)

    async def _publish_fleet(self, planner: Planner, workers: list[WorkerInfo], now: float) -> None:
        """What the autoscaler scales on: the demand per device class, from the planner that
        sees every viewer, published for every replica to answer alike."""
        by_class = demand(
            planner, now, self._klass_of, self.config.scaling, self.fleet.classes, self.trend
        )
        live = Counter(w.device.partition(":")[0] for w in workers)  # "cuda:1" is a cuda worker
        classes = {k: {**d.as_json(), "workers": live[k]} for k, d in by_class.items()}
        fleet = {"at": now, "planner": self.board.replica, "classes": classes}
        await self.board.set_fleet(fleet, self.config.fleet_ttl_s)

    def _klass_of(self, effect: str) -> str:
        try:
            return self.fleet.klass_of(effect)
        except PlayheadError:  # an effect this fleet cannot run: shown under its first class
            return self.fleet.classes[0]

    # ---- events -----------------------------------------------------------------------------

    async def _know(self, planner: Planner, render_id: str) -> bool:
        """Make sure the planner knows the render (its shape and what the store has)."""
        if planner.knows(render_id):
            return True
        try:
            render = await asyncio.to_thread(self.catalog.render, render_id)
            asset = await asyncio.to_thread(self.catalog.asset, render.asset)
        except NotFoundError:
            return False
        ready = await self.readiness.ready_set(render)
        info = RenderInfo(
            render.id, float(asset.fps), asset.segment_frames, asset.frames, render.effect
        )
        planner.add_render(info, ready)
        return True

    async def _board_event(
        self, planner: Planner, event: BoardEvent, now: float, apply: bool = True
    ) -> None:
        ops = Ops()
        if isinstance(event, SessionReport):
            if not await self._know(planner, event.render):
                return
            self._replica_of[event.session] = event.replica
            ops = self._report(planner, event, now)
            session = planner.sessions.get(event.session)  # None: a guess that was ignored
            if session is not None and session.moving and not self.someone_playing:
                self.someone_playing = True  # at once; the next tick clears it
                await self.board.set_playing(True, 3 * self.config.tick_s)
        elif isinstance(event, SessionLeft):
            self._replica_of.pop(event.session, None)
            self._inferred.discard(event.session)
            ops = planner.leave(event.session, now)
        elif isinstance(event, Requested):
            if not await self._know(planner, event.render):
                return
            if 0 <= event.segment < planner.renders[event.render].info.segments:
                self._replica_of[event.owner] = event.replica
                ops = planner.request(event.render, event.segment, event.owner, event.at)
        elif isinstance(event, RequestDone):
            self._replica_of.pop(event.owner, None)
            ops = planner.unrequest(event.render, event.segment, event.owner, now)
        elif isinstance(event, ExportWanted):
            if not await self._know(planner, event.render):
                await self._fail_export(event.export, event.render, "the render is gone")
                return
            ops = planner.export(event.render, event.export, event.at, now)
        elif isinstance(event, ExportOver):
            ops = planner.unexport(event.render, event.export, now)
        elif isinstance(event, AssetDeleted):
            for render_id in event.renders:
                ops.extend(planner.drop_render(render_id))
        if apply:
            await self._apply(ops, now)

    def _report(self, planner: Planner, event: SessionReport, now: float) -> Ops:
        """A viewer's report. Viewers guessed from segment requests count only for renders
        nobody reports on over a WebSocket: the replica that infers one may not be the one
        holding the real viewer's WebSocket (behind a load balancer, a player's segment
        requests and its WebSocket reach different replicas), and a guess at the player's
        buffer, far ahead of its playhead, would take workers from the segments it needs."""
        session = Session(
            event.session, event.render, event.playhead, event.playing, event.rate, event.at
        )
        reported = {
            s.id
            for s in planner.sessions.values()
            if s.render == event.render and s.id not in self._inferred
        }
        if event.inferred:
            if reported - {event.session}:
                return Ops()
            self._inferred.add(event.session)
            return planner.report(session, now)
        self._inferred.discard(event.session)
        ops = planner.report(session, now)
        guesses = [
            s.id
            for s in list(planner.sessions.values())
            if s.render == event.render and s.id in self._inferred
        ]
        for sid in guesses:  # a real viewer reports on this render now: drop the guesses
            self._inferred.discard(sid)
            ops.extend(planner.leave(sid, now))
        return ops

    async def _changed(self, planner: Planner, change: Change, now: float) -> None:
        if change.job_id.startswith(EXPORT_JOB):
            await self._export_changed(change)
            return
        try:
            render_id, k = parse_job_id(change.job_id)
        except ValueError:
            return
        if not planner.knows(render_id):
            return  # nobody needs that render now
        self._measure(planner, change)
        ops = planner.changed(change.job_id, change.state, change.at, change.result, change.error)
        if change.state is JobState.FAILED:
            record = json.dumps({"error": change.error or "failed", "at": change.at}).encode()
            await asyncio.to_thread(
                self.store.put, failure_key(render_id, k), record, overwrite=True
            )
        await self._apply(ops, now)

    def _measure(self, planner: Planner, change: Change) -> None:
        job_id = change.job_id
        if change.state is JobState.RUNNING:
            submitted = self._submitted_at.pop(job_id, None)
            if submitted is not None:
                self.metrics.queue_wait.observe(max(0.0, change.at - submitted))
        elif change.state is JobState.DONE:
            result = change.result or {}
            seconds, effect = result.get("seconds"), result.get("effect")
            if isinstance(seconds, (int, float)) and isinstance(effect, str):
                self.metrics.render_seconds.labels(effect=effect).observe(seconds)
            deadline = planner.deadlines.pop(job_id, None)
            if deadline is not None:
                if isinstance(seconds, (int, float)) and isinstance(effect, str):
                    self.trend.worked(self._klass_of(effect), change.at, seconds)
                self.metrics.lead_time.observe(deadline - change.at)
                if change.at > deadline:
                    self.metrics.deadline_misses.inc()
        elif change.state in (JobState.FAILED, JobState.CANCELLED):
            self._submitted_at.pop(job_id, None)
            planner.deadlines.pop(job_id, None)

    # ---- exports ----------------------------------------------------------------------------

    async def _export_changed(self, change: Change) -> None:
        eid = change.job_id.removeprefix(EXPORT_JOB)
        if change.state is JobState.DONE:
            record = await asyncio.to_thread(exports.load, self.store, eid)
            await self.board.publish(ExportOver(export=eid, render=record.render))
        elif change.state is JobState.FAILED:
            record = await asyncio.to_thread(exports.load, self.store, eid)
            await self._fail_export(eid, record.render, change.error or "failed")

    async def _fail_export(self, eid: str, render_id: str, why: str) -> None:
        def fail() -> None:
            try:
                record = exports.load(self.store, eid)
            except NotFoundError:
                return
            exports.save(self.store, record.model_copy(update={"state": "failed", "error": why}))

        await asyncio.to_thread(fail)
        await self.board.publish(ExportOver(export=eid, render=render_id))

    # ---- the queue ----------------------------------------------------------------------------

    async def _apply(self, ops: Ops, now: float) -> None:
        if not ops:
            return
        calls: list[Coroutine[Any, Any, Any]] = []
        for spec in ops.submit:
            render = self.catalog.render(spec.render)  # known: the planner asked for it
            job = Job(spec.job_id, segment_payload(render, spec.segment), spec.priority)
            calls.append(self.queue.submit(job))
            self._submitted_at[spec.job_id] = now
        calls += [self.queue.reprioritise(j, p) for j, p in ops.reprioritise]
        calls += [self.queue.cancel(j) for j in ops.cancel]
        calls += [self.queue.interrupt(j) for j in ops.interrupt]
        for eid, since in ops.exports:
            job = Job(
                EXPORT_JOB + eid, export_payload(eid), encode_priority(Priority.EXPORT, since)
            )
            calls.append(self.queue.submit(job))
        try:
            await _bounded(calls, QUEUE_CALLS)
        except PlayheadError:
            self._last_resync = 0.0  # the queue may not be what the planner thinks: resync
            raise
        for eid, why in ops.failed_exports:
            record_render = await self._export_render(eid)
            await self._fail_export(eid, record_render, why)

    async def _export_render(self, eid: str) -> str:
        try:
            return (await asyncio.to_thread(exports.load, self.store, eid)).render
        except NotFoundError:
            return ""


async def _bounded(calls: list[Coroutine[Any, Any, Any]], limit: int) -> None:
    """Await ``calls`` with at most ``limit`` in flight, started in order (most urgent first:
    a plan lists its submissions by priority)."""
    slots = asyncio.Semaphore(limit)

    async def one(call: Coroutine[Any, Any, Any]) -> None:
        async with slots:
            await call

    await asyncio.gather(*(one(c) for c in calls))


def _learn(cost: CostModel, result: dict[str, Any] | None) -> None:
    """Fold a completed segment's measured cost into ``cost``."""
    result = result or {}
    frames, seconds, effect = result.get("frames"), result.get("seconds"), result.get("effect")
    if (
        isinstance(frames, int)
        and isinstance(seconds, (int, float))
        and isinstance(effect, str)
        and frames > 0
    ):
        cost.update(effect, float(seconds), frames)
