"""One queue per device class: the composite the planner talks to passes the conformance
suite, sends each job only to its class's queue (the only one that class's workers claim
from), and can still cancel a job whose render is gone."""

from __future__ import annotations

import pytest
from queue_conformance import LONG, WorkQueueConformance, job
from test_queue_memory import FakeClock

from playhead.queue import Change, JobState, MemoryQueue, WorkQueue
from playhead.queue.routed import RoutedQueue

pytestmark = pytest.mark.anyio


class TestOneClass(WorkQueueConformance):
    """A fleet of one device class: the composite is a transparent queue."""

    async def new_queue(self, max_attempts: int) -> WorkQueue:
        memory = MemoryQueue(max_attempts=max_attempts, retry_backoff_s=1.0, clock=FakeClock())
        return RoutedQueue({"cpu": memory}, lambda job_id: "cpu")

    def _memory(self, q: WorkQueue) -> MemoryQueue:
        assert isinstance(q, RoutedQueue)
        memory = q.queues["cpu"]
        assert isinstance(memory, MemoryQueue) and isinstance(memory.clock, FakeClock)
        return memory

    async def lapse(self, q: WorkQueue) -> list[str]:
        clock = self._memory(q).clock
        assert isinstance(clock, FakeClock)
        clock.now += self.short + 0.001
        return await q.reap()

    async def let_backoff_pass(self, q: WorkQueue) -> None:
        clock = self._memory(q).clock
        assert isinstance(clock, FakeClock)
        clock.now += 3600


def _fleet() -> tuple[RoutedQueue, MemoryQueue, MemoryQueue, dict[str, str]]:
    gpu, cpu = MemoryQueue(clock=FakeClock()), MemoryQueue(clock=FakeClock())
    classes = {"onnx-render": "cuda", "edges-render": "cpu"}  # render → its effect's class
    routed = RoutedQueue(
        {"cuda": gpu, "cpu": cpu}, lambda job_id: classes[job_id.rpartition(":")[0]]
    )
    return routed, gpu, cpu, classes


async def test_jobs_reach_only_the_queue_of_their_device_class() -> None:
    routed, gpu, cpu, _ = _fleet()
    await routed.submit(job("onnx-render:0", 2.0))
    await routed.submit(job("edges-render:0", 1.0))
    # a CPU worker claims from the CPU queue only: the more urgent GPU job is not its to take
    lease = await cpu.claim("cpu-worker", LONG)
    assert lease is not None and lease.job.id == "edges-render:0"
    assert await cpu.claim("cpu-worker", LONG) is None
    gpu_lease = await gpu.claim("gpu-worker", LONG)
    assert gpu_lease is not None and gpu_lease.job.id == "onnx-render:0"
    # the planner sees every class through the composite
    assert sorted(await routed.running()) == ["edges-render:0", "onnx-render:0"]
    await routed.complete(gpu_lease, {"frames": 25})
    assert await routed.state("onnx-render:0") is JobState.DONE


async def test_the_planner_hears_every_class_and_sees_one_claim_order() -> None:
    routed, _, _, _ = _fleet()
    heard: list[Change] = []
    routed.watch(heard.append)
    await routed.submit(job("onnx-render:1", 3.0))
    await routed.submit(job("edges-render:1", 1.0))
    await routed.submit(job("onnx-render:2", 2.0))
    assert [j.id for j in await routed.pending()] == [
        "edges-render:1",
        "onnx-render:2",
        "onnx-render:1",
    ]
    assert {c.job_id for c in heard} == {"onnx-render:1", "edges-render:1", "onnx-render:2"}
    assert (await routed.stats())["queued"] == 3
    assert await routed.reprioritise("onnx-render:1", 0.5)
    assert (await routed.pending())[0].id == "onnx-render:1"


async def test_a_job_of_a_deleted_render_can_still_be_cancelled() -> None:
    routed, gpu, _, classes = _fleet()
    await routed.submit(job("onnx-render:3"))
    del classes["onnx-render"]  # the render is gone: routing by its effect is impossible now
    assert await routed.cancel("onnx-render:3")
    assert await gpu.state("onnx-render:3") is None
    assert not await routed.cancel("never-seen:0")  # unknown everywhere: nothing to do
