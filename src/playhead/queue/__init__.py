"""Work queues: the interface, the in-process implementation and the Redis one (BullMQ)."""

from playhead.queue.base import (
    FINISHED,
    Change,
    InvalidTransition,
    Job,
    JobState,
    Lease,
    LeaseLost,
    Listener,
    QueueUnavailable,
    WorkQueue,
)
from playhead.queue.memory import MemoryQueue

__all__ = [
    "FINISHED",
    "Change",
    "InvalidTransition",
    "Job",
    "JobState",
    "Lease",
    "LeaseLost",
    "Listener",
    "MemoryQueue",
    "QueueUnavailable",
    "WorkQueue",
]
