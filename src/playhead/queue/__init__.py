"""Work queues: the interface, and the in-process implementation."""

from playhead.queue.base import (
    FINISHED,
    InvalidTransition,
    Job,
    JobState,
    Lease,
    LeaseLost,
    WorkQueue,
)
from playhead.queue.memory import MemoryQueue

__all__ = [
    "FINISHED",
    "InvalidTransition",
    "Job",
    "JobState",
    "Lease",
    "LeaseLost",
    "MemoryQueue",
    "WorkQueue",
]
