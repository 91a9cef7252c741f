"""The WorkQueue interface: what the scheduler submits and workers claim.

Jobs are JSON (never pickle). Claims come with a lease and a fencing token: a worker that
lost its lease (it stalled, or was killed and its job handed to another) can no longer renew
or complete, so a late result never overwrites the new holder's. Time is passed in (``now``)
on every call that depends on it: the queue reads no clock of its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from playhead.errors import PlayheadError


class JobState(StrEnum):
    QUEUED = "queued"
    BLOCKED = "blocked"  # waiting for the jobs it depends on
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})

# every legal transition; anything else is a bug in the caller and raises
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.BLOCKED: frozenset({JobState.QUEUED, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.DONE, JobState.QUEUED, JobState.FAILED}),
    # a finished job may be submitted again (its output was evicted, or it is retried)
    JobState.DONE: frozenset({JobState.QUEUED, JobState.BLOCKED}),
    JobState.FAILED: frozenset({JobState.QUEUED, JobState.BLOCKED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED, JobState.BLOCKED}),
}


class InvalidTransition(PlayheadError, RuntimeError):
    status = 409
    code = "invalid_transition"


class LeaseLost(PlayheadError, RuntimeError):
    """The lease expired and was reaped, or a newer claim holds the job."""

    status = 409
    code = "lease_lost"


def check_transition(job_id: str, old: JobState, new: JobState) -> None:
    if new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "nothing"
        raise InvalidTransition(f"job {job_id}: expected a move to {allowed} from {old}, got {new}")


@dataclass(frozen=True)
class Job:
    """A unit of work. ``priority``: lower is more urgent. ``id`` is the job's identity:
    submitting the same id again updates the waiting job rather than adding another."""

    id: str
    payload: dict[str, Any]
    priority: float
    depends_on: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Keep a private copy of exactly what a shared queue would hand back (tuples become
        # lists, keys become strings): the caller's dict cannot change a queued job, and the
        # in-process queue cannot accept a payload that Redis would return differently.
        text = json.dumps(self.payload, allow_nan=False)  # JSON or a TypeError/ValueError now
        object.__setattr__(self, "payload", json.loads(text))
        if math.isnan(self.priority):  # NaN compares false both ways: it would never be claimed
            raise ValueError(f"job {self.id}: priority is NaN")
        if self.id in self.depends_on:
            raise ValueError(f"job {self.id} depends on itself")

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "payload": self.payload,
                "priority": self.priority,
                "depends_on": list(self.depends_on),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Job:
        d = json.loads(text)
        return cls(d["id"], d["payload"], float(d["priority"]), tuple(d["depends_on"]))


@dataclass(frozen=True)
class Lease:
    job: Job
    worker: str
    token: int  # fencing token: increases with every claim, queue-wide
    expires_at: float
    attempt: int = 1
    claimed_at: float = 0.0


OnChange = Callable[[str, JobState], None]


class WorkQueue(Protocol):
    def submit(self, job: Job, now: float) -> None:
        """Queue ``job``, or update the waiting one with its id; a running job is left alone."""
        ...

    def reprioritise(self, job_id: str, priority: float) -> bool:
        """Change a waiting job's priority; False if it is not waiting."""
        ...

    def cancel(self, job_id: str) -> bool:
        """Cancel a waiting job; False if it is running or finished (it is not interrupted)."""
        ...

    def claim(
        self, worker: str, now: float, lease_s: float, max_priority: float = math.inf
    ) -> Lease | None:
        """The most urgent claimable job (ties: submission order), leased to ``worker``;
        None if there is none, or if the most urgent is less urgent than ``max_priority``."""
        ...

    def renew(self, lease: Lease, now: float, lease_s: float) -> Lease:
        """Extend a lease; `LeaseLost` if it lapsed or was superseded."""
        ...

    def complete(self, lease: Lease, now: float, result: dict[str, Any]) -> None:
        """Record the result; `LeaseLost` (and nothing recorded) for a stale lease."""
        ...

    def fail(self, lease: Lease, now: float, error: str, retry: bool) -> None:
        """Give up on a claim: queued again if ``retry`` and attempts remain, else failed."""
        ...

    def reap(self, now: float) -> list[str]:
        """Return expired leases' jobs to the queue (or fail them past max attempts)."""
        ...

    def state(self, job_id: str) -> JobState | None: ...

    def result(self, job_id: str) -> dict[str, Any] | None: ...

    def error(self, job_id: str) -> str | None: ...

    def stats(self) -> dict[str, int]:
        """Number of jobs in each state."""
        ...

    def pending(self) -> list[Job]:
        """Waiting (queued) jobs in claim order."""
        ...


@dataclass
class JobRecord:
    """Everything the queue keeps about one job (the in-memory queue's row)."""

    job: Job
    state: JobState
    seq: int
    attempts: int = 0
    token: int = 0
    worker: str | None = None
    expires_at: float = 0.0
    result: dict[str, Any] | None = None
    error: str | None = None
    waiting_on: set[str] = field(default_factory=set)
