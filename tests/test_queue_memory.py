"""The in-process queue passes the conformance suite on a fake clock."""

from __future__ import annotations

import pytest
from queue_conformance import LONG, WorkQueueConformance, job

from playhead.queue import JobState, MemoryQueue, WorkQueue

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TestMemoryQueue(WorkQueueConformance):
    async def new_queue(self, max_attempts: int) -> WorkQueue:
        return MemoryQueue(max_attempts=max_attempts, retry_backoff_s=1.0, clock=FakeClock())

    async def lapse(self, q: WorkQueue) -> list[str]:
        assert isinstance(q, MemoryQueue) and isinstance(q.clock, FakeClock)
        q.clock.now += self.short + 0.001
        return await q.reap()

    async def let_backoff_pass(self, q: WorkQueue) -> None:
        assert isinstance(q, MemoryQueue) and isinstance(q.clock, FakeClock)
        q.clock.now += 3600


async def test_a_retry_waits_for_its_backoff() -> None:
    clock = FakeClock()
    q = MemoryQueue(retry_backoff_s=2.0, clock=clock)
    await q.submit(job("a"))
    lease = await q.claim("w", LONG)
    assert lease is not None
    await q.fail(lease, "flaky", retry=True)
    assert await q.claim("w", LONG) is None  # backing off
    clock.now += 1.9
    assert await q.claim("w", LONG) is None
    clock.now += 0.2
    again = await q.claim("w", LONG)
    assert again is not None and again.attempt == 2
    await q.fail(again, "flaky", retry=True)
    clock.now += 2.1
    assert await q.claim("w", LONG) is None  # the second backoff is twice as long
    clock.now += 2.0
    assert await q.claim("w", LONG) is not None


async def test_finished_jobs_are_forgotten_after_a_while() -> None:
    clock = FakeClock()
    q = MemoryQueue(keep_finished_s=60, clock=clock)
    await q.submit(job("a"))
    lease = await q.claim("w", LONG)
    assert lease is not None
    await q.complete(lease, {})
    clock.now += 59
    assert await q.state("a") is JobState.DONE
    clock.now += 2
    assert await q.state("a") is None
    assert (await q.stats())["done"] == 0


async def test_reprioritising_does_not_grow_the_heap_without_bound() -> None:
    q = MemoryQueue(clock=FakeClock())
    for i in range(50):
        await q.submit(job(f"j{i}", 1.0))
    for t in range(200):
        for i in range(50):
            await q.reprioritise(f"j{i}", float(t))
    assert len(q._heap) <= 2 * 50 + 64 + 1
    assert [j.id for j in await q.pending()] == [f"j{i}" for i in range(50)]
    claimed = []
    while (lease := await q.claim("w", LONG)) is not None:
        claimed.append(lease.job.id)
    assert claimed == [f"j{i}" for i in range(50)]
