"""The in-process queue passes the conformance suite, and reports every change in order."""

from __future__ import annotations

import threading

from queue_conformance import LEASE, WorkQueueConformance, job

from playhead.queue import JobState, MemoryQueue, WorkQueue


class TestMemoryQueue(WorkQueueConformance):
    def make_queue(self, max_attempts: int = 3) -> WorkQueue:
        return MemoryQueue(max_attempts=max_attempts)


def test_on_change_sees_every_transition_in_order() -> None:
    seen: list[tuple[str, JobState]] = []
    q = MemoryQueue(on_change=lambda job_id, state: seen.append((job_id, state)))
    q.submit(job("a"), 0)
    lease = q.claim("w", 0, LEASE)
    assert lease is not None
    q.complete(lease, 1, {})
    q.submit(job("b"), 1)
    q.cancel("b")
    assert seen == [
        ("a", JobState.QUEUED),
        ("a", JobState.RUNNING),
        ("a", JobState.DONE),
        ("b", JobState.QUEUED),
        ("b", JobState.CANCELLED),
    ]


def test_on_change_may_call_back_into_the_queue() -> None:
    """The hook runs outside the queue's lock, so reading state from it cannot deadlock."""
    states: list[JobState | None] = []
    q: MemoryQueue
    q = MemoryQueue(on_change=lambda job_id, _: states.append(q.state(job_id)))
    q.submit(job("a"), 0)
    assert states == [JobState.QUEUED]


def test_on_change_order_holds_across_threads() -> None:
    """A worker's claim is told after the submit that queued the job, even when the thread
    that submitted is slow to tell: the hook is called under one re-entrant lock."""
    seen: list[JobState] = []
    submitter_telling = threading.Event()
    let_submitter_go = threading.Event()

    def hook(job_id: str, state: JobState) -> None:
        if state is JobState.QUEUED:
            submitter_telling.set()
            let_submitter_go.wait()
        seen.append(state)

    q = MemoryQueue(on_change=hook)
    submitter = threading.Thread(target=q.submit, args=(job("a"), 0))
    submitter.start()
    submitter_telling.wait()

    def claim_and_complete() -> None:
        lease = q.claim("w", 0, LEASE)
        assert lease is not None
        q.complete(lease, 1, {})

    worker = threading.Thread(target=claim_and_complete)
    worker.start()
    worker.join(timeout=0.2)  # without the telling lock the worker would report first
    let_submitter_go.set()
    submitter.join()
    worker.join()
    assert seen == [JobState.QUEUED, JobState.RUNNING, JobState.DONE]


def test_reprioritising_does_not_grow_the_heap_without_bound() -> None:
    q = MemoryQueue()
    for i in range(50):
        q.submit(job(f"j{i}", 1.0), 0)
    for t in range(200):
        for i in range(50):
            q.reprioritise(f"j{i}", float(t))
    assert len(q._heap) <= 2 * 50 + 64 + 1
    assert [j.id for j in q.pending()] == [f"j{i}" for i in range(50)]
    claimed = [lease.job.id for lease in iter(lambda: q.claim("w", 0, LEASE), None)]
    assert claimed == [f"j{i}" for i in range(50)]
