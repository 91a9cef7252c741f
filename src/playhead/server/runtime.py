"""The one place a ``playhead serve`` process is wired together.

Embedded (the default): an in-process queue and board, the data directory as the store, and
worker tasks in this process. Distributed (``--redis``): the queue and the board in Redis, the
store from ``--store`` (a shared directory or S3), usually no workers here (``--workers 0``;
``playhead worker`` processes do the rendering). The parts are the same either way and know
nothing of which runtime they are in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from playhead.board import AssetDeleted, Board, BoardEvent, MemoryBoard
from playhead.catalog import Catalog
from playhead.effects import devices, registry
from playhead.errors import PlayheadError
from playhead.mezzanines import MezzanineCache
from playhead.queue import MemoryQueue, WorkQueue
from playhead.queue.routed import RoutedQueue
from playhead.scheduler import get_policy, parse_job_id
from playhead.server.config import ServeConfig
from playhead.server.exports import Exports
from playhead.server.frames import FrameService
from playhead.server.masks import MaskService
from playhead.server.metrics import Metrics
from playhead.server.planning import EXPORT_JOB, Fleet, PlanningService
from playhead.server.readiness import Readiness
from playhead.server.viewers import Viewers
from playhead.store import LocalStore, Store
from playhead.store.url import open_store
from playhead.worker.headroom import Headroom
from playhead.worker.jobs import JobRunner
from playhead.worker.loop import Worker
from playhead.worker.presence import announce

log = logging.getLogger(__name__)

SWEEP_S = 60.0  # a local store's cache is rescanned (other processes write too) this often
READY_PROBE_KEY = "readyz"  # what /readyz asks the store about: any answer, even "no", will do


class DrainingError(PlayheadError, RuntimeError):
    """This replica has begun shutting down: a load balancer should send its requests
    elsewhere (while it drains, it still answers what reaches it)."""

    status = 503
    code = "draining"


class FleetUnknown(PlayheadError, RuntimeError):
    status = 503
    code = "fleet_unknown"


class Runtime:
    def __init__(
        self, config: ServeConfig, store: Store, queues: Mapping[str, WorkQueue], board: Board
    ) -> None:
        """``queues``: one per device class of the fleet's workers (embedded: one, this
        machine's)."""
        self.config = config
        self.clock = time.time
        self.store = store
        self.classes = tuple(queues)
        # one class needs no routing; several get a queue each, which the planner sees as one
        self.queue: WorkQueue = (
            next(iter(queues.values())) if len(queues) == 1 else RoutedQueue(queues, self.route_job)
        )
        queue = self.queue
        # in-process workers render on this machine's device, from that class's queue
        self._local_queue = queues.get(devices.current().klass, self.queue)
        self.board = board
        self.metrics = Metrics()
        self.mezzanines = MezzanineCache(store, _mezzanine_root(config, store))
        self.catalog = Catalog(store, self.mezzanines)
        self.readiness = Readiness(store, queue, self.catalog, config.planning.failure_cooldown_s)
        self.viewers = Viewers(board, self.catalog, config.inferred_session_ttl_s)
        self.planning = PlanningService(
            board,
            queue,
            self.catalog,
            self.readiness,
            store,
            get_policy(config.policy),
            self.metrics,
            config.planning,
            fleet=Fleet(self.classes, self.route_effect),
        )
        self.exports = Exports(store, board, self.catalog, self.readiness)
        self.frames = FrameService(self.catalog)
        self.masks = MaskService(self.catalog, store)
        self.workers: list[Worker] = []
        self._runners: list[JobRunner] = []
        self._executor = ThreadPoolExecutor(max(1, config.workers), thread_name_prefix="render")
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats: tuple[float, dict[str, Any]] = (0.0, {})
        self.draining = False  # set once shutdown begins (SIGTERM): not ready from then on

    @classmethod
    async def open(cls, config: ServeConfig) -> Runtime:
        config.check()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        if config.store is not None:
            store = open_store(config.store, config.cache_bytes)
        else:
            store = LocalStore(config.data_dir, config.cache_bytes)
        if config.redis is None:  # every effect renders here, on this machine's device
            memory = MemoryQueue(config.max_attempts, config.retry_backoff_s)
            return cls(config, store, {devices.current().klass: memory}, MemoryBoard())
        from playhead.board.redis import RedisBoard
        from playhead.queue.redis import RedisQueue

        queues: dict[str, WorkQueue] = {}
        for klass in config.device_classes:
            queues[klass] = await RedisQueue.connect(
                config.redis,
                name=devices.queue_name(config.queue_name, klass),
                max_attempts=config.max_attempts,
                retry_backoff_s=config.retry_backoff_s,
                stalled_interval_s=config.stalled_check_s,
            )
        board = await RedisBoard.connect(config.redis, name=config.queue_name)
        return cls(config, store, queues, board)

    # ---- routing ----------------------------------------------------------------------------

    def route_effect(self, effect: str) -> str:
        """The device class whose workers render ``effect`` (`UnsupportedDeviceError` when
        the fleet has none that can)."""
        return devices.route(registry.get(effect), self.classes)

    def route_job(self, job_id: str) -> str:
        if job_id.startswith(EXPORT_JOB):  # reading segments and writing a file: any worker
            return self.classes[0]
        render_id, _ = parse_job_id(job_id)
        return self.route_effect(self.catalog.render(render_id).effect)

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self.config.sample:
            await asyncio.to_thread(self._ingest_sample)
        self.readiness.start()
        self.readiness.listen(self.viewers.segment_changed)
        self.board.listen(self._on_board)
        self.planning.start()
        headroom = Headroom(self.board, self.config.headroom_s)
        if self.config.workers > 1 and self.config.policy == "deadline":
            self.spawn(headroom.follow())
        for i in range(self.config.workers):
            runner = JobRunner(
                self.catalog, self.store, self.config.data_dir / "scratch", self.config.batch_size
            )
            # every worker but the first keeps out of far-ahead prefetch: one is then free
            # (or soon free) when a seek makes a segment urgent
            reserve = i > 0 and self.config.policy == "deadline"
            worker = Worker(
                f"{self.board.replica}-w{i}",
                self._local_queue,
                runner,
                self._executor,
                self.config.lease_s,
                limit=headroom if reserve else None,
            )
            worker.start()
            self.workers.append(worker)
            self._runners.append(runner)
        self.metrics.workers.set(len(self.workers))
        if self.workers:
            self.spawn(announce(self.board, self.workers, str(devices.current())))
        self.spawn(self._housekeeping())

    def _ingest_sample(self) -> None:
        """Something to play at once on a fresh install."""
        if not self.catalog.assets():
            from playhead import samples

            asset = self.catalog.ingest(samples.fetch()["carphone.mp4"], self.config.ingest)
            log.info("ingested the sample clip as asset %s", asset.id)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run background work owned by the runtime: cancelled and awaited on stop."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop(self.config.lease_s) for w in self.workers))
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.planning.stop()
        self.readiness.stop()
        for runner in self._runners:
            runner.close()
        self.frames.close()
        await self.board.close()
        await self.queue.close()
        self._executor.shutdown(wait=False)

    async def _housekeeping(self) -> None:
        last_sweep = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            await self.viewers.expire(time.time())
            self.metrics.sessions.set(len(self.viewers))
            if isinstance(self.store, LocalStore) and time.monotonic() - last_sweep > SWEEP_S:
                last_sweep = time.monotonic()
                await asyncio.to_thread(self.store.sweep)

    def _on_board(self, event: BoardEvent) -> None:
        if isinstance(event, AssetDeleted):  # every replica drops what it cached
            self.catalog.forget(event.asset, event.renders)
            for render_id in event.renders:
                self.readiness.forget(render_id)
            self.frames.forget_asset(event.asset)
            self.masks.forget_asset(event.asset)
            for runner in self._runners:
                runner.forget_asset(event.asset)

    # ---- what the routes ask of it ----------------------------------------------------------

    async def delete_asset(self, asset_id: str) -> None:
        renders = await asyncio.to_thread(self.catalog.delete_asset, asset_id)
        await self.board.publish(AssetDeleted(asset=asset_id, renders=renders))

    async def stats(self) -> dict[str, Any]:
        """Queue, workers and measured speed; cached for a second (every WebSocket asks)."""
        at, cached = self._stats
        if time.monotonic() - at < 1.0:
            return cached
        workers = await self.board.workers()
        cost = self.planning.cost
        stats = {
            "jobs": await self.queue.stats(),
            "workers": len(workers),
            "busy": [w.busy for w in workers],
            "render_fps": {e: round(1 / s, 1) for e, s in cost.per_frame.items() if s > 0},
            "sessions": len(self.viewers),
        }
        self._stats = (time.monotonic(), stats)
        return stats

    def drain(self) -> None:
        """Shutdown has begun: `ready` refuses from now on. Only sets a flag, so a signal
        handler may call it."""
        self.draining = True

    async def ready(self) -> None:
        """Return if this replica can serve; else raise why not: `DrainingError` once it is
        shutting down, `QueueUnavailable` / `BoardUnavailable` while Redis cannot be reached,
        `StoreUnavailable` while the store cannot."""
        if self.draining:
            raise DrainingError("this replica is shutting down")
        await self.stats()  # the queue and the board; a success is cached for a second
        await asyncio.to_thread(self.store.exists, READY_PROBE_KEY)

    async def fleet(self) -> dict[str, Any]:
        fleet = await self.board.fleet()
        if fleet is None:
            raise FleetUnknown("no planner has published the fleet's demand lately; retry")
        return fleet

    async def refresh_gauges(self) -> None:
        fleet = await self.board.fleet()
        for klass, d in (fleet or {}).get("classes", {}).items():
            self.metrics.desired_workers.labels(device=klass).set(d["desired_workers"])
            self.metrics.low_slack_jobs.labels(device=klass).set(d["low_slack_jobs"])
        for state, count in (await self.queue.stats()).items():
            self.metrics.jobs.labels(state=state).set(count)
        workers = await self.board.workers()
        self.metrics.workers.set(len(workers))
        if workers:
            self.metrics.busy.set(sum(w.busy for w in workers) / len(workers))
        size = self.store.size()
        if size is not None:
            self.metrics.store_bytes.set(size)


def _mezzanine_root(config: ServeConfig, store: Store) -> Path:
    """Where mezzanines are kept locally: a local store's own directory needs no copies."""
    if isinstance(store, LocalStore):
        return store.root
    return config.data_dir / "mezzanines"
