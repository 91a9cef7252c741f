"""The planner's float priority, packed into BullMQ's integer priority without losing order.

The planner queues a job under ``klass * CLASS_SPAN + key``: a class (0 urgent … 3 export)
and a key that is a time in seconds (a deadline, a request time, an export's start plus the
segment's media time; see `scheduler/priority.py`). BullMQ orders its ``prioritized`` set by
``priority * 2**32 + counter``, so its priority is an integer in 1 … 2**21 and ties go by
submission order. The packing:

- the class picks one of four equal ranges of ``buckets`` integers (2**19 each by default);
- inside it, the key picks a bucket of ``bucket_s`` seconds (10 ms) counted from a shared
  **epoch** (a key value every client reads from Redis), which sits a quarter of the way into
  the range, so keys from 22 minutes before it to 65 minutes after it keep their order;
- a key outside that window is clamped to the range's first or last bucket, where order
  degrades to submission order (for an export, far in the future, that is segment order).

The epoch rolls: when it gets older than ``rebase_after_s`` it moves forward by the time
elapsed and every waiting job is re-encoded from its exact float priority (kept in the job's
hash); `RedisQueue` does that atomically. Keys must therefore advance with real time (any
clock: unix, monotonic); keys that do not (a plain segment index) still sort while they fit
in the window and degrade to submission order once the epoch has rolled past them.

The constants mirror `playhead.scheduler.priority` (CLASS_SPAN = 1e10, four classes); they
are not imported from there so that the queue does not depend on the scheduler package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CLASS_SPAN = 1e10
"""Width of one priority class in key seconds (as in `playhead.scheduler.priority`)."""

CLASSES = 4
"""Urgent, playing, paused, export."""

BULLMQ_MAX_PRIORITY = 2**21
"""BullMQ's priority is 1 … 2**21 (0 means "no priority": the FIFO ``wait`` list)."""

TIME_LIKE_S = 86_400.0
"""A first key within a day of the wall clock is a unix time: the epoch starts at now."""


@dataclass(frozen=True)
class Epoch:
    """The key that maps to the anchor bucket, when it was set, and its generation.

    Stored in Redis as one string, ``"<key> <at> <gen>"`` (floats as ``repr``), so a client
    can tell by comparing strings whether the epoch it encoded with is still current.
    """

    key: float
    at: float  # unix time when it was set
    gen: int

    def dump(self) -> str:
        return f"{self.key!r} {self.at!r} {self.gen}"

    @classmethod
    def load(cls, raw: str) -> Epoch:
        key, at, gen = raw.split()
        return cls(float(key), float(at), int(gen))

    @classmethod
    def first(cls, key: float, now: float) -> Epoch:
        """The epoch of a queue whose first job has within-class ``key``: now, if keys look
        like unix times; else the key itself (keys on another clock, or tests' small ones)."""
        return cls(now if abs(key - now) < TIME_LIKE_S else key, now, 1)

    def rolled(self, now: float) -> Epoch:
        """The next epoch: moved forward by the time elapsed, so it follows the keys."""
        return Epoch(self.key + max(0.0, now - self.at), now, self.gen + 1)


@dataclass(frozen=True)
class PriorityMap:
    buckets: int = 2**19  # per class
    bucket_s: float = 0.01
    anchor: float = 0.25  # where in a class's range the epoch sits

    def __post_init__(self) -> None:
        if self.buckets < 2 or self.buckets * CLASSES > BULLMQ_MAX_PRIORITY:
            raise ValueError(f"buckets per class must be 2 … {BULLMQ_MAX_PRIORITY // CLASSES}")
        if not self.bucket_s > 0 or not 0.0 <= self.anchor < 1.0:
            raise ValueError("bucket_s must be positive and anchor in [0, 1)")

    @property
    def window_s(self) -> float:
        """The span of keys one class orders exactly."""
        return self.buckets * self.bucket_s

    def split(self, priority: float) -> tuple[int, float]:
        """(class, key within it); classes outside 0 … 3 are clamped (the key then lies
        outside the class's window and clamps too), like `scheduler.priority_class`."""
        if math.isinf(priority):
            return (0, -math.inf) if priority < 0 else (CLASSES - 1, math.inf)
        klass = min(max(math.floor(priority / CLASS_SPAN), 0), CLASSES - 1)
        return klass, priority - klass * CLASS_SPAN

    def encode(self, priority: float, epoch: Epoch) -> int:
        """BullMQ's priority for ``priority``: monotonic (never inverts an order), and keys at
        least ``bucket_s`` apart in the window get different values."""
        klass, key = self.split(priority)
        offset = (key - epoch.key) / self.bucket_s + self.anchor * self.buckets
        bucket = 0 if offset < 0 else min(self.buckets - 1, math.floor(min(offset, 2.0**62)))
        return 1 + klass * self.buckets + bucket

    def key_of(self, priority: float) -> float:
        """The within-class key, finite (for choosing a first epoch)."""
        key = self.split(priority)[1]
        return key if math.isfinite(key) else 0.0
