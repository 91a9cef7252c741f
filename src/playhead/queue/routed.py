"""One queue per device class, seen by the planner as one queue.

A fleet's workers are of several device classes (CPU nodes, GPU nodes), and a job must reach
only workers that can run it. Each class has its own queue — a worker claims from its class's
queue alone, so routing costs nothing at claim time and needs no filter that BullMQ does not
have — and the planner, which submits to and watches all of them, talks to this composite.

``route`` maps a job id to its class (from the render's effect; see
`playhead.effects.devices.route`). The class of every job seen is remembered, so a job whose
render has just been deleted can still be cancelled in the queue that holds it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from typing import Any

from playhead.aio import first_of
from playhead.queue.base import FINISHED, Change, Job, JobState, Lease, Listener, WorkQueue


class RoutedQueue:
    def __init__(self, queues: Mapping[str, WorkQueue], route: Callable[[str], str]) -> None:
        if not queues:
            raise ValueError("a routed queue needs at least one queue")
        self.queues = dict(queues)
        self.route = route
        self._where: dict[str, str] = {}  # job id → class, for every job not yet finished
        self._unwatch = [q.watch(self._seen(k)) for k, q in self.queues.items()]

    def _seen(self, klass: str) -> Listener:
        def note(change: Change) -> None:
            if change.state in FINISHED:
                self._where.pop(change.job_id, None)
            else:
                self._where[change.job_id] = klass

        return note

    def _of(self, job_id: str) -> WorkQueue | None:
        klass = self._where.get(job_id)
        if klass is None:
            try:
                klass = self.route(job_id)
            except Exception:  # a job of a render that is gone: no queue knows it
                return None
        return self.queues.get(klass)

    async def submit(self, job: Job) -> None:
        klass = self.route(job.id)
        self._where[job.id] = klass
        await self.queues[klass].submit(job)

    async def reprioritise(self, job_id: str, priority: float) -> bool:
        q = self._of(job_id)
        return q is not None and await q.reprioritise(job_id, priority)

    async def cancel(self, job_id: str) -> bool:
        q = self._of(job_id)
        return q is not None and await q.cancel(job_id)

    async def interrupt(self, job_id: str) -> bool:
        q = self._of(job_id)
        return q is not None and await q.interrupt(job_id)

    async def claim(
        self, worker: str, lease_s: float, max_priority: float = math.inf
    ) -> Lease | None:
        """From the first class with work (workers claim from their own class's queue; this
        is for a process that serves every class, like an embedded server)."""
        for q in self.queues.values():
            lease = await q.claim(worker, lease_s, max_priority)
            if lease is not None:
                return lease
        return None

    async def wait_for_work(self, timeout: float) -> None:
        if len(self.queues) == 1:
            await next(iter(self.queues.values())).wait_for_work(timeout)
            return
        await first_of(
            *(q.wait_for_work(timeout) for q in self.queues.values()), ignore=(Exception,)
        )

    def _holder(self, lease: Lease) -> WorkQueue:
        q = self._of(lease.job.id)
        if q is None:
            raise KeyError(f"no queue holds job {lease.job.id}")
        return q

    async def renew(self, lease: Lease, lease_s: float) -> Lease:
        return await self._holder(lease).renew(lease, lease_s)

    async def complete(self, lease: Lease, result: dict[str, Any]) -> None:
        await self._holder(lease).complete(lease, result)

    async def fail(self, lease: Lease, error: str, retry: bool) -> None:
        await self._holder(lease).fail(lease, error, retry)

    async def release(self, lease: Lease) -> None:
        await self._holder(lease).release(lease)

    async def reap(self) -> list[str]:
        return [job for q in self.queues.values() for job in await q.reap()]

    async def state(self, job_id: str) -> JobState | None:
        q = self._of(job_id)
        return None if q is None else await q.state(job_id)

    async def result(self, job_id: str) -> dict[str, Any] | None:
        q = self._of(job_id)
        return None if q is None else await q.result(job_id)

    async def error(self, job_id: str) -> str | None:
        q = self._of(job_id)
        return None if q is None else await q.error(job_id)

    async def stats(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for q in self.queues.values():
            for state, n in (await q.stats()).items():
                total[state] = total.get(state, 0) + n
        return total

    async def stats_by_class(self) -> dict[str, dict[str, int]]:
        return {k: await q.stats() for k, q in self.queues.items()}

    async def pending(self) -> list[Job]:
        lists = [await q.pending() for q in self.queues.values()]
        return list(heapq.merge(*lists, key=lambda job: job.priority))

    async def running(self) -> list[str]:
        return [job for q in self.queues.values() for job in await q.running()]

    def watch(self, listener: Listener) -> Callable[[], None]:
        stops = [q.watch(listener) for q in self.queues.values()]

        def unwatch() -> None:
            for stop in stops:
                stop()

        return unwatch

    async def close(self) -> None:
        for stop in self._unwatch:
            stop()
        for q in self.queues.values():
            await q.close()
