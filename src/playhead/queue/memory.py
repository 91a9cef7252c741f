"""The in-process WorkQueue: a heap with lazy deletion, one lock, O(log n) claims.

It is the default for ``playhead serve`` (workers are threads of the same process) and the
reference that the Redis queue must match: both pass `tests/queue_conformance.py`.
"""

from __future__ import annotations

import heapq
import json
import math
import threading
from collections import Counter, defaultdict
from typing import Any

from playhead.queue.base import (
    FINISHED,
    Job,
    JobRecord,
    JobState,
    Lease,
    LeaseLost,
    OnChange,
    check_transition,
)


class MemoryQueue:
    def __init__(self, max_attempts: int = 3, on_change: OnChange | None = None) -> None:
        self.max_attempts = max_attempts
        self._on_change = on_change
        self._jobs: dict[str, JobRecord] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._dependants: dict[str, set[str]] = defaultdict(set)
        self._seq = 0
        self._token = 0
        self._lock = threading.Lock()
        self._events: list[tuple[str, JobState]] = []  # told to on_change after the lock
        # Held while telling on_change, so every thread's events reach the hook in the order
        # they happened (re-entrant: the hook may call back into the queue).
        self._telling = threading.RLock()

    # ---- helpers (lock held) -------------------------------------------------------------

    def _push(self, rec: JobRecord) -> None:
        heapq.heappush(self._heap, (rec.job.priority, rec.seq, rec.job.id))
        # Lazy deletion leaves an entry behind on every reprioritise, cancel and claim: rebuild
        # from the live records once the dead ones dominate (amortised O(1) per push).
        if len(self._heap) > 2 * len(self._jobs) + 64:
            self._heap = [
                (r.job.priority, r.seq, r.job.id)
                for r in self._jobs.values()
                if r.state is JobState.QUEUED
            ]
            heapq.heapify(self._heap)

    def _move(self, rec: JobRecord, new: JobState) -> None:
        check_transition(rec.job.id, rec.state, new)
        rec.state = new
        if new is JobState.QUEUED:
            self._seq += 1
            rec.seq = self._seq
            self._push(rec)
        self._events.append((rec.job.id, new))
        if new is JobState.DONE:
            self._release_dependants(rec.job.id)
        elif new in (JobState.FAILED, JobState.CANCELLED):
            self._fail_dependants(rec.job.id)

    def _release_dependants(self, job_id: str) -> None:
        for dep_id in self._dependants.pop(job_id, set()):
            dep = self._jobs.get(dep_id)
            if dep is None or dep.state is not JobState.BLOCKED:
                continue
            dep.waiting_on.discard(job_id)
            if not dep.waiting_on:
                self._move(dep, JobState.QUEUED)

    def _fail_dependants(self, job_id: str) -> None:
        for dep_id in self._dependants.pop(job_id, set()):
            dep = self._jobs.get(dep_id)
            if dep is not None and dep.state is JobState.BLOCKED:
                dep.error = f"dependency {job_id} did not complete"
                self._move(dep, JobState.FAILED)

    def _flush(self) -> None:
        with self._telling:
            with self._lock:
                events, self._events = self._events, []
            if self._on_change:
                for job_id, state in events:
                    self._on_change(job_id, state)

    def _holder(self, lease: Lease) -> JobRecord:
        rec = self._jobs.get(lease.job.id)
        if rec is None or rec.state is not JobState.RUNNING or rec.token != lease.token:
            raise LeaseLost(f"job {lease.job.id}: lease {lease.token} is no longer held")
        return rec

    # ---- the interface -------------------------------------------------------------------

    def submit(self, job: Job, now: float) -> None:
        with self._lock:
            rec = self._jobs.get(job.id)
            if rec is not None and rec.state in (JobState.QUEUED, JobState.BLOCKED):
                if rec.job.priority != job.priority:
                    rec.job = job
                    if rec.state is JobState.QUEUED:  # the old heap entry is skipped later
                        self._push(rec)
                return
            if rec is not None and rec.state is JobState.RUNNING:
                return
            if rec is None:
                rec = JobRecord(job, JobState.CANCELLED, 0)  # a fresh record, about to move
                self._jobs[job.id] = rec
            rec.job, rec.result, rec.error, rec.attempts = job, None, None, 0
            failed = [
                d for d in job.depends_on if self._state(d) in (JobState.FAILED, JobState.CANCELLED)
            ]
            waiting = {d for d in job.depends_on if self._state(d) is not JobState.DONE}
            if failed:
                rec.error = f"dependency {failed[0]} did not complete"
                rec.state = JobState.FAILED
                self._events.append((job.id, JobState.FAILED))
            elif waiting:
                rec.waiting_on = waiting
                for d in waiting:
                    self._dependants[d].add(job.id)
                self._move(rec, JobState.BLOCKED)
            else:
                self._move(rec, JobState.QUEUED)
        self._flush()

    def _state(self, job_id: str) -> JobState | None:
        rec = self._jobs.get(job_id)
        return rec.state if rec else None

    def reprioritise(self, job_id: str, priority: float) -> bool:
        with self._lock:
            rec = self._jobs.get(job_id)
            if rec is None or rec.state not in (JobState.QUEUED, JobState.BLOCKED):
                return False
            if rec.job.priority != priority:
                rec.job = Job(rec.job.id, rec.job.payload, priority, rec.job.depends_on)
                if rec.state is JobState.QUEUED:
                    self._push(rec)
            return True

    def cancel(self, job_id: str) -> bool:
        with self._lock:
            rec = self._jobs.get(job_id)
            if rec is None or rec.state not in (JobState.QUEUED, JobState.BLOCKED):
                return False
            self._move(rec, JobState.CANCELLED)
        self._flush()
        return True

    def claim(
        self, worker: str, now: float, lease_s: float, max_priority: float = math.inf
    ) -> Lease | None:
        with self._lock:
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
                rec.token, rec.worker = self._token, worker
                rec.expires_at = now + lease_s
                rec.attempts += 1
                self._move(rec, JobState.RUNNING)
                lease = Lease(rec.job, worker, rec.token, rec.expires_at, rec.attempts, now)
                break
            else:
                return None
        self._flush()
        return lease

    def renew(self, lease: Lease, now: float, lease_s: float) -> Lease:
        with self._lock:
            rec = self._holder(lease)
            if now > rec.expires_at:
                raise LeaseLost(f"job {lease.job.id}: lease {lease.token} expired")
            rec.expires_at = now + lease_s
            return Lease(
                rec.job, lease.worker, lease.token, rec.expires_at, lease.attempt, lease.claimed_at
            )

    def complete(self, lease: Lease, now: float, result: dict[str, Any]) -> None:
        # results are JSON like payloads; a bad one raises here and the lease is still held
        stored = json.loads(json.dumps(result, allow_nan=False))
        with self._lock:
            rec = self._holder(lease)
            rec.result = stored
            rec.worker = None
            self._move(rec, JobState.DONE)
        self._flush()

    def fail(self, lease: Lease, now: float, error: str, retry: bool) -> None:
        with self._lock:
            rec = self._holder(lease)
            rec.error, rec.worker = error, None
            again = retry and rec.attempts < self.max_attempts
            self._move(rec, JobState.QUEUED if again else JobState.FAILED)
        self._flush()

    def reap(self, now: float) -> list[str]:
        reaped = []
        with self._lock:
            for rec in self._jobs.values():
                if rec.state is JobState.RUNNING and rec.expires_at < now:
                    rec.worker, rec.error = None, "lease expired"
                    again = rec.attempts < self.max_attempts
                    self._move(rec, JobState.QUEUED if again else JobState.FAILED)
                    reaped.append(rec.job.id)
        self._flush()
        return reaped

    def state(self, job_id: str) -> JobState | None:
        with self._lock:
            return self._state(job_id)

    def result(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            rec = self._jobs.get(job_id)
            return dict(rec.result) if rec and rec.result is not None else None

    def error(self, job_id: str) -> str | None:
        with self._lock:
            rec = self._jobs.get(job_id)
            return rec.error if rec else None

    def stats(self) -> dict[str, int]:
        with self._lock:
            counts = Counter(rec.state.value for rec in self._jobs.values())
        return {s.value: counts.get(s.value, 0) for s in JobState}

    def pending(self) -> list[Job]:
        with self._lock:
            waiting = [r for r in self._jobs.values() if r.state is JobState.QUEUED]
        waiting.sort(key=lambda r: (r.job.priority, r.seq))
        return [r.job for r in waiting]

    def forget_finished(self) -> int:
        """Drop finished jobs' records (their outputs live in the store); returns how many."""
        with self._lock:
            done = [
                j
                for j, r in self._jobs.items()
                if r.state in FINISHED and j not in self._dependants
            ]
            for j in done:
                del self._jobs[j]
        return len(done)
