"""The WorkQueue interface: what the planner submits and workers claim.

Jobs are JSON (never pickle). Claims come with a lease and a fencing token: a worker that
lost its lease (it stalled, or was killed and its job handed to another) can no longer renew,
complete, fail or release, so a late result never overwrites the new holder's.

Every implementation tells listeners about every change of every job, in the order the changes
happened (`WorkQueue.watch`): that is how each API replica learns that a segment another
replica's viewer asked for is ready. The in-process queue reads an injected clock (tests drive
it); the Redis queue keeps time on the Redis server (leases are key expiries there).

Dependencies between jobs are not the queue's business: a segment that needs another's output
(a chain) is submitted by the planner once that output is in the store, which outlives any
job record (see `scheduler/_demand.py`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from playhead.errors import PlayheadError


class JobState(StrEnum):
    QUEUED = "queued"  # waiting to be claimed (also while backing off after a failed attempt)
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # out of attempts, or failed for good (bad input)
    CANCELLED = "cancelled"  # told to listeners only: a cancelled job is forgotten at once


FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})

# every legal transition; anything else is a bug in the caller and raises
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.DONE, JobState.QUEUED, JobState.FAILED}),
    # a finished job may be submitted again (its output was evicted, or it is retried)
    JobState.DONE: frozenset({JobState.QUEUED}),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
}


class InvalidTransition(PlayheadError, RuntimeError):
    status = 409
    code = "invalid_transition"


class LeaseLost(PlayheadError, RuntimeError):
    """The lease expired and was reaped, or a newer claim holds the job."""

    status = 409
    code = "lease_lost"


class QueueUnavailable(PlayheadError, ConnectionError):
    """The queue's server cannot be reached (Redis down or restarting)."""

    status = 503
    code = "queue_unavailable"


def check_transition(job_id: str, old: JobState, new: JobState) -> None:
    if new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "nothing"
        raise InvalidTransition(f"job {job_id}: expected a move to {allowed} from {old}, got {new}")


def json_copy(value: dict[str, Any], what: str) -> dict[str, Any]:
    """Exactly what a shared queue would hand back (tuples become lists, keys strings), or a
    TypeError/ValueError now: the in-process queue cannot accept what Redis would refuse."""
    copied: dict[str, Any] = json.loads(json.dumps(value, allow_nan=False))
    if not isinstance(copied, dict):
        raise TypeError(f"{what} must be a JSON object")
    return copied


@dataclass(frozen=True)
class Job:
    """A unit of work. ``priority``: lower is more urgent. ``id`` is the job's identity:
    submitting the same id again updates the waiting job rather than adding another."""

    id: str
    payload: dict[str, Any]
    priority: float

    def __post_init__(self) -> None:
        # a private copy: the caller's dict cannot change a queued job
        object.__setattr__(self, "payload", json_copy(self.payload, f"job {self.id}: payload"))
        if math.isnan(self.priority):  # NaN compares false both ways: it would never be claimed
            raise ValueError(f"job {self.id}: priority is NaN")
        if not self.id or any(c.isspace() for c in self.id):
            raise ValueError(f"bad job id {self.id!r}")

    def with_priority(self, priority: float) -> Job:
        """The same job at another priority, without copying the payload again (it is this
        job's private copy already, and no one can change it)."""
        if math.isnan(priority):
            raise ValueError(f"job {self.id}: priority is NaN")
        job = object.__new__(Job)
        for name, value in (("id", self.id), ("payload", self.payload), ("priority", priority)):
            object.__setattr__(job, name, value)
        return job


@dataclass(frozen=True)
class Lease:
    job: Job
    worker: str
    token: int  # fencing token: increases with every claim, queue-wide
    expires_at: float  # on the queue's clock
    attempt: int = 1
    interrupted: bool = False  # someone asked the holder to stop between batches


@dataclass(frozen=True)
class Change:
    """One transition of one job, as listeners see it."""

    job_id: str
    state: JobState
    at: float  # when it happened, on the queue's clock
    result: dict[str, Any] | None = None  # DONE: what the worker returned
    error: str | None = None  # FAILED: why


Listener = Callable[[Change], None]


class WorkQueue(Protocol):
    async def submit(self, job: Job) -> None:
        """Queue ``job``, or update the waiting one with its id; a running job is left alone,
        a finished one is run again (its output was evicted, or it failed and is retried)."""
        ...

    async def reprioritise(self, job_id: str, priority: float) -> bool:
        """Change a waiting job's priority; False if it is not waiting."""
        ...

    async def cancel(self, job_id: str) -> bool:
        """Cancel and forget a waiting job; False if it is running or finished (a running job
        is not interrupted: see `interrupt`)."""
        ...

    async def interrupt(self, job_id: str) -> bool:
        """Ask the holder of a running job to stop at its next check (its next `renew` says
        so); it then releases the job. False if the job is not running (or its lease lapsed)."""
        ...

    async def claim(
        self, worker: str, lease_s: float, max_priority: float = math.inf
    ) -> Lease | None:
        """The most urgent claimable job (ties: submission order), leased to ``worker`` for
        ``lease_s``; None if there is none, or if the most urgent is less urgent than
        ``max_priority``."""
        ...

    async def wait_for_work(self, timeout: float) -> None:
        """Return when a job may have become claimable, or after ``timeout`` seconds."""
        ...

    async def renew(self, lease: Lease, lease_s: float) -> Lease:
        """Extend a lease (and learn whether the job was interrupted); `LeaseLost` if it
        lapsed or was superseded."""
        ...

    async def complete(self, lease: Lease, result: dict[str, Any]) -> None:
        """Record the result; `LeaseLost` (and nothing recorded) for a stale lease: superseded,
        or lapsed (a lapsed lease is refused even before it is reaped)."""
        ...

    async def fail(self, lease: Lease, error: str, retry: bool) -> None:
        """Give up on a claim: queued again after a backoff if ``retry`` and attempts remain,
        else failed."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give a job back unfinished (interrupted, or the worker is shutting down): queued
        again at its priority, ahead of jobs of the same priority."""
        ...

    async def reap(self) -> list[str]:
        """Return the jobs of expired leases to the queue (or fail them past max attempts)."""
        ...

    async def state(self, job_id: str) -> JobState | None:
        """None for a job the queue does not know (never submitted, cancelled, forgotten)."""
        ...

    async def result(self, job_id: str) -> dict[str, Any] | None: ...

    async def error(self, job_id: str) -> str | None: ...

    async def stats(self) -> dict[str, int]:
        """Number of jobs in each state the queue keeps (queued, running, done, failed)."""
        ...

    async def pending(self) -> list[Job]:
        """Waiting (queued) jobs in claim order."""
        ...

    async def running(self) -> list[str]:
        """Ids of the jobs that are claimed now."""
        ...

    def watch(self, listener: Listener) -> Callable[[], None]:
        """Tell ``listener`` every change from now on, in order; returns the unsubscribe.
        Listeners run on the event loop and must not block."""
        ...

    async def close(self) -> None: ...
