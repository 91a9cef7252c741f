"""``playhead worker``: a worker process of a fleet, wired to Redis and the store.

It claims segments from the shared queue, renders them and writes them to the store; it
announces itself on the board (the planner's capacity), helps return expired leases to the
queue, and drops what it cached of a deleted asset. SIGTERM (a spot instance's notice, a
rolling update) stops claiming; the jobs in hand finish within the grace period or are
released for another worker; then it exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from playhead.board import AssetDeleted, BoardEvent
from playhead.catalog import Catalog
from playhead.effects import devices
from playhead.effects.devices import Device
from playhead.errors import PlayheadError
from playhead.mezzanines import MezzanineCache
from playhead.queue import WorkQueue
from playhead.store import LocalStore
from playhead.store.url import open_store
from playhead.worker.headroom import Headroom
from playhead.worker.jobs import JobRunner
from playhead.worker.loop import Worker
from playhead.worker.presence import announce

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    redis: str
    store: str
    data_dir: Path  # local copies of mezzanines, exports being written
    concurrency: int = 1
    lease_s: float = 30.0
    grace_s: float = 25.0  # spot notices give 30 s; leave some for the exit itself
    batch_size: int | None = None  # None: what each effect prefers on the device
    queue_name: str = "segments"  # the fleet's name: this worker claims from its class's queue
    max_attempts: int = 3
    stalled_check_s: float = 0.5  # see ServeConfig: a killed worker's job runs again soon
    headroom_s: float | None = None  # a reserve: while anyone plays, only work due this soon
    device: Device = field(default_factory=devices.detect)


async def run(config: WorkerConfig) -> int:
    from playhead.board.redis import RedisBoard
    from playhead.queue.redis import RedisQueue

    devices.use(config.device)  # before any model loads: its runtime asks for the device
    store = open_store(config.store)
    root = store.root if isinstance(store, LocalStore) else config.data_dir / "mezzanines"
    catalog = Catalog(store, MezzanineCache(store, root))
    queue = await RedisQueue.connect(
        config.redis,
        name=devices.queue_name(config.queue_name, config.device.klass),
        max_attempts=config.max_attempts,
        stalled_interval_s=min(config.stalled_check_s, config.lease_s / 4),
    )
    board = await RedisBoard.connect(config.redis, name=config.queue_name)
    executor = ThreadPoolExecutor(config.concurrency, thread_name_prefix="render")
    prefix = f"{socket.gethostname()}-{os.getpid()}"
    runners = [
        JobRunner(catalog, store, config.data_dir / "scratch", config.batch_size)
        for _ in range(config.concurrency)
    ]
    headroom = Headroom(board, config.headroom_s) if config.headroom_s is not None else None
    workers = [
        Worker(f"{prefix}-w{i}", queue, runner, executor, config.lease_s, limit=headroom)
        for i, runner in enumerate(runners)
    ]

    def on_board(event: BoardEvent) -> None:
        if isinstance(event, AssetDeleted):
            catalog.forget(event.asset, event.renders)
            catalog.mezzanines.forget(event.asset)
            for runner in runners:
                runner.forget_asset(event.asset)

    board.listen(on_board)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for w in workers:
        w.start()
    helpers = [
        asyncio.create_task(announce(board, workers, str(config.device))),
        asyncio.create_task(_reap(queue, config.lease_s)),
    ]
    if headroom is not None:
        helpers.append(asyncio.create_task(headroom.follow()))
    log.info(
        "%s: %d worker(s) on %s, queue %s, store %s",
        prefix,
        len(workers),
        config.device,
        queue.name,
        config.store,
    )
    await stop.wait()
    log.info("%s: stopping (grace %.0f s)", prefix, config.grace_s)
    await asyncio.gather(*(w.stop(config.grace_s) for w in workers))
    for t in helpers:
        t.cancel()
    for t in helpers:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    for runner in runners:
        runner.close()
    await board.close()
    await queue.close()
    executor.shutdown(wait=False)
    return 0


async def _reap(queue: WorkQueue, lease_s: float) -> None:
    """Help return expired leases to the queue (the planner does too; either is enough)."""
    while True:
        await asyncio.sleep(min(0.25, lease_s / 8))
        with contextlib.suppress(PlayheadError):
            await queue.reap()
