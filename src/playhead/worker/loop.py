"""The worker loop: claim → run (in a thread) → complete, renewing the lease meanwhile.

The same loop runs as tasks inside ``playhead serve`` and in ``playhead worker`` processes on
GPU nodes; it talks only to the WorkQueue, and the job it runs only to the Store. The loop
itself is asyncio (claims, renewals and completions are I/O); the job runs in a thread of the
worker's own executor, because decoding, inference and encoding block.

- A worker killed mid-job loses nothing: its lease expires, the job is claimed again
  elsewhere, and a late completion from the old holder is rejected by its fencing token.
- A job someone interrupts (nobody needs it any more) stops between batches and is released.
- `stop` (SIGTERM, a spot instance's notice) stops claiming, lets the job in hand finish
  within the grace period, and otherwise interrupts it and releases it for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from playhead.aio import first_of
from playhead.errors import PlayheadError
from playhead.pipeline import Interrupted
from playhead.queue import Lease, LeaseLost, QueueUnavailable, WorkQueue

log = logging.getLogger(__name__)

Execute = Callable[[dict[str, Any], Callable[[], bool]], dict[str, Any]]
"""Runs one job's payload in a thread; the callable says when to stop (between batches)."""


class Worker:
    """One worker: a task that claims and runs jobs until `stop`."""

    def __init__(
        self,
        name: str,
        queue: WorkQueue,
        execute: Execute,
        executor: ThreadPoolExecutor,
        lease_s: float = 30.0,
        idle_s: float = 0.5,
        limit: Callable[[float], float] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.queue = queue
        self.execute = execute
        self.executor = executor
        self.lease_s = lease_s
        self.idle_s = idle_s
        # how often the lease is renewed, which is also how soon an interrupt is noticed
        self.renew_s = min(lease_s / 3, 0.5)
        self.limit = limit  # now → the least urgent priority this worker may claim
        self.clock = clock
        self.busy_seconds = 0.0
        self.started_at = time.monotonic()
        self.current: str | None = None
        self._stopping = asyncio.Event()
        self._give_up = threading.Event()  # grace period over: interrupt the job in hand
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.name)

    def busy_ratio(self) -> float:
        return self.busy_seconds / max(time.monotonic() - self.started_at, 1e-9)

    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def request_stop(self) -> None:
        """Stop claiming; the job in hand goes on."""
        self._stopping.set()

    async def stop(self, grace_s: float) -> None:
        """Stop claiming, give the job in hand ``grace_s`` to finish, then interrupt it (it
        stops at its next batch and is released to another worker); wait for the loop."""
        self.request_stop()
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=grace_s)
        if not done:
            self._give_up.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                ceiling = self.limit(self.clock()) if self.limit else math.inf
                lease = await self.queue.claim(self.name, self.lease_s, ceiling)
            except QueueUnavailable as e:
                log.warning("%s: %s; retrying", self.name, e.message)
                await self._pause(1.0)
                continue
            if lease is None:
                await self._pause(self.idle_s, wait_for_work=True)
                continue
            await self._work(lease)

    async def _pause(self, seconds: float, wait_for_work: bool = False) -> None:
        """Sleep (or wait for work) for ``seconds``, unless asked to stop first."""
        wait = self.queue.wait_for_work(seconds) if wait_for_work else asyncio.sleep(seconds)
        await first_of(self._stopping.wait(), wait, ignore=(QueueUnavailable,))

    async def _work(self, lease: Lease) -> None:
        started = time.perf_counter()
        self.current = lease.job.id
        log.info("%s: claimed %s (attempt %d)", self.name, lease.job.id, lease.attempt)
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self.executor, self.execute, lease.job.payload, stop.is_set)
        lost = False
        try:
            while True:
                done, _ = await asyncio.wait({job}, timeout=self.renew_s)
                if done:
                    break
                if self._give_up.is_set():
                    stop.set()
                if lost:
                    continue
                try:
                    lease = await self.queue.renew(lease, self.lease_s)
                except LeaseLost:
                    log.warning("%s: lease on %s was lost; stopping it", self.name, lease.job.id)
                    lost = True
                    stop.set()
                    continue
                except QueueUnavailable:
                    continue  # keep rendering; the next renewal may get through
                if lease.interrupted:
                    stop.set()
            if lost:  # another worker has it now: whatever this one made is discarded
                with contextlib.suppress(Exception):
                    job.result()
            else:
                await self._finish(lease, job)
        finally:
            self.busy_seconds += time.perf_counter() - started
            self.current = None

    async def _finish(self, lease: Lease, job: asyncio.Future[dict[str, Any]]) -> None:
        try:
            result = job.result()
        except Interrupted:
            action: Callable[[], Awaitable[None]] = lambda: self.queue.release(lease)  # noqa: E731
        except PlayheadError as e:  # bad input: retrying cannot help
            log.warning("job %s failed: %s", lease.job.id, e.message)
            reason = e.message
            action = lambda: self.queue.fail(lease, reason, retry=False)  # noqa: E731
        except Exception as e:
            log.exception("job %s crashed", lease.job.id)
            crash = f"{type(e).__name__}: {e}"
            action = lambda: self.queue.fail(lease, crash, retry=True)  # noqa: E731
        else:
            action = lambda: self.queue.complete(lease, result)  # noqa: E731
            log.info("%s: finished %s", self.name, lease.job.id)
        # the queue may be restarting: keep trying while the lease could still be ours
        deadline = time.monotonic() + self.lease_s
        while True:
            try:
                await action()
                return
            except LeaseLost:
                log.warning("lease on %s was lost; another worker has the job", lease.job.id)
                return
            except QueueUnavailable as e:
                if time.monotonic() > deadline:
                    log.error("could not finish %s: %s", lease.job.id, e.message)
                    return
                await asyncio.sleep(0.5)
