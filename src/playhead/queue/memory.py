"""The in-process WorkQueue: a heap with lazy deletion, O(log n) claims, one event loop.

It is the default for ``playhead serve`` (workers are tasks of the same process) and the
reference that the Redis queue must match: both pass `tests/queue_conformance.py`. Every
method runs on the event loop, so no lock is needed; time comes from an injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from playhead.queue.base import (
    FINISHED,
    Change,
    Job,
    JobState,
    Lease,
    LeaseLost,
    Listener,
    check_transition,
    json_copy,
)


@dataclass
class _Record:
    job: Job
    state: JobState
    seq: int
    attempts: int = 0
    token: int = 0
    expires_at: float = 0.0
    not_before: float = 0.0  # backing off after a failed attempt
    interrupted: bool = False
    result: dict[str, Any] | None = None
    error: str | None = None
    finished_at: float = 0.0


class MemoryQueue:
    def __init__(
        self,
        max_attempts: int = 3,
        retry_backoff_s: float = 0.5,
        keep_finished_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self.keep_finished_s = keep_finished_s
        self.clock = clock
        self._jobs: dict[str, _Record] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._delayed: list[tuple[float, int, str]] = []  # (not_before, seq, id)
        self._finished: deque[tuple[float, str]] = deque()  # forgotten after keep_finished_s
        self._seq = 0
        self._token = 0
        self._listeners: list[Listener] = []
        self._work = asyncio.Event()

    # ---- helpers ----------------------------------------------------------------------------

    def _push(self, rec: _Record) -> None:
        if rec.not_before > self.clock():
            heapq.heappush(self._delayed, (rec.not_before, rec.seq, rec.job.id))
            return
        rec.not_before = 0.0
        heapq.heappush(self._heap, (rec.job.priority, rec.seq, rec.job.id))
        # Lazy deletion leaves an entry behind on every reprioritise, cancel and claim: rebuild
        # from the live records once the dead ones dominate (amortised O(1) per push).
        if len(self._heap) > 2 * len(self._jobs) + 64:
            self._heap = [
                (r.job.priority, r.seq, r.job.id)
                for r in self._jobs.values()
                if r.state is JobState.QUEUED and r.not_before == 0.0
            ]
            heapq.heapify(self._heap)
        self._wake()

    def _wake(self) -> None:
        self._work.set()
        self._work = asyncio.Event()

    def _move(self, rec: _Record, new: JobState, front: bool = False) -> None:
        check_transition(rec.job.id, rec.state, new)
        rec.state = new
        now = self.clock()
        if new is JobState.QUEUED:
            # released jobs go ahead of their peers; everything else behind them
            self._seq += 1
            rec.seq = -self._seq if front else self._seq
            rec.interrupted = False
            self._push(rec)
        if new in FINISHED:
            rec.finished_at = now
            if new is JobState.CANCELLED:
                del self._jobs[rec.job.id]
            else:
                self._finished.append((now, rec.job.id))
        error = rec.error if new is JobState.FAILED else None
        self._tell(Change(rec.job.id, new, now, rec.result, error))

    def _tell(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)

    def _holder(self, lease: Lease) -> _Record:
        rec = self._jobs.get(lease.job.id)
        if (
            rec is None
            or rec.state is not JobState.RUNNING
            or rec.token != lease.token
            or self.clock() > rec.expires_at
        ):
            raise LeaseLost(f"job {lease.job.id}: lease {lease.token} is no longer held")
        return rec

    def _forget_old(self) -> None:
        horizon = self.clock() - self.keep_finished_s
        while self._finished and self._finished[0][0] <= horizon:
            _, job_id = self._finished.popleft()
            rec = self._jobs.get(job_id)
            if rec is not None and rec.state in FINISHED and rec.finished_at <= horizon:
                del self._jobs[job_id]

    def _promote_due(self) -> None:
        now = self.clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, seq, job_id = heapq.heappop(self._delayed)
            rec = self._jobs.get(job_id)
            if rec is not None and rec.state is JobState.QUEUED and rec.seq == seq:
                rec.not_before = 0.0
                self._push(rec)

    # ---- the interface ----------------------------------------------------------------------

    async def submit(self, job: Job) -> None:
        self._forget_old()
        rec = self._jobs.get(job.id)
        if rec is not None and rec.state is JobState.QUEUED:
            if rec.job.priority != job.priority:
                rec.job = job
                if rec.not_before == 0.0:  # the old heap entry is skipped later
                    self._push(rec)
            return
        if rec is not None and rec.state is JobState.RUNNING:
            return
        if rec is None:
            rec = _Record(job, JobState.CANCELLED, 0)  # a fresh record, about to move
            self._jobs[job.id] = rec
        rec.job, rec.result, rec.error, rec.attempts, rec.not_before = job, None, None, 0, 0.0
        self._move(rec, JobState.QUEUED)

    async def reprioritise(self, job_id: str, priority: float) -> bool:
        rec = self._jobs.get(job_id)
        if rec is None or rec.state is not JobState.QUEUED:
            return False
        if rec.job.priority != priority:
            rec.job = rec.job.with_priority(priority)
            if rec.not_before == 0.0:
                self._push(rec)
        return True

    async def cancel(self, job_id: str) -> bool:
        rec = self._jobs.get(job_id)
        if rec is None or rec.state is not JobState.QUEUED:
            return False
        self._move(rec, JobState.CANCELLED)
        return True

    async def interrupt(self, job_id: str) -> bool:
        rec = self._jobs.get(job_id)
        if rec is None or rec.state is not JobState.RUNNING:
            return False
        rec.interrupted = True
        return True

    async def claim(
        self, worker: str, lease_s: float, max_priority: float = math.inf
    ) -> Lease | None:
        self._promote_due()
        while self._heap:
            priority, seq, job_id = heapq.heappop(self._heap)
            rec = self._jobs.get(job_id)
            # lazy deletion: skip entries left behind by reprioritise, cancel, claim
            if (
                rec is None
                or rec.state is not JobState.QUEUED
                or rec.seq != seq
                or rec.job.priority != priority
            ):
                continue
            if priority > max_priority:  # the most urgent is not urgent enough: put back
                heapq.heappush(self._heap, (priority, seq, job_id))
                return None
            self._token += 1
            rec.token = self._token
            rec.expires_at = self.clock() + lease_s
            rec.attempts += 1
            self._move(rec, JobState.RUNNING)
            return Lease(rec.job, worker, rec.token, rec.expires_at, rec.attempts)
        return None

    async def wait_for_work(self, timeout: float) -> None:
        if self._delayed:  # a job backing off becomes claimable without any event
            timeout = min(timeout, max(0.0, self._delayed[0][0] - self.clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._work.wait(), timeout)

    async def renew(self, lease: Lease, lease_s: float) -> Lease:
        rec = self._holder(lease)
        rec.expires_at = self.clock() + lease_s
        return replace(lease, job=rec.job, expires_at=rec.expires_at, interrupted=rec.interrupted)

    async def complete(self, lease: Lease, result: dict[str, Any]) -> None:
        # results are JSON like payloads; a bad one raises here and the lease is still held
        stored = json_copy(result, f"job {lease.job.id}: result")
        rec = self._holder(lease)
        rec.result = stored
        self._move(rec, JobState.DONE)

    async def fail(self, lease: Lease, error: str, retry: bool) -> None:
        rec = self._holder(lease)
        rec.error = error
        if retry and rec.attempts < self.max_attempts:
            rec.not_before = self.clock() + self.retry_backoff_s * 2 ** (rec.attempts - 1)
            self._move(rec, JobState.QUEUED)
        else:
            self._move(rec, JobState.FAILED)

    async def release(self, lease: Lease) -> None:
        rec = self._holder(lease)
        rec.attempts -= 1  # not an attempt: it was given back, not tried and failed
        self._move(rec, JobState.QUEUED, front=True)

    async def reap(self) -> list[str]:
        now = self.clock()
        reaped = []
        for rec in list(self._jobs.values()):
            if rec.state is JobState.RUNNING and rec.expires_at < now:
                rec.error = "lease expired"
                self._move(
                    rec, JobState.QUEUED if rec.attempts < self.max_attempts else JobState.FAILED
                )
                reaped.append(rec.job.id)
        return reaped

    async def state(self, job_id: str) -> JobState | None:
        self._forget_old()
        rec = self._jobs.get(job_id)
        return rec.state if rec else None

    async def result(self, job_id: str) -> dict[str, Any] | None:
        rec = self._jobs.get(job_id)
        return dict(rec.result) if rec and rec.result is not None else None

    async def error(self, job_id: str) -> str | None:
        rec = self._jobs.get(job_id)
        return rec.error if rec else None

    async def stats(self) -> dict[str, int]:
        self._forget_old()
        counts = Counter(rec.state.value for rec in self._jobs.values())
        return {s.value: counts.get(s.value, 0) for s in JobState if s is not JobState.CANCELLED}

    async def pending(self) -> list[Job]:
        waiting = [r for r in self._jobs.values() if r.state is JobState.QUEUED]
        waiting.sort(key=lambda r: (r.not_before > 0, r.job.priority, r.seq))
        return [r.job for r in waiting]

    async def running(self) -> list[str]:
        return [j for j, r in self._jobs.items() if r.state is JobState.RUNNING]

    def watch(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def close(self) -> None:
        self._listeners.clear()
