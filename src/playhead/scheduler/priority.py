"""Priority classes and the single float a job is queued under.

The queue (in-process heap or a Redis sorted set) orders jobs by one number, ascending. The
scheduler's order is "class first, then a key within the class", so both are packed into one
float: ``priority = klass * CLASS_SPAN + key``.

The key is a time in seconds on the caller's clock (a deadline, a request time, …). It must lie
in ``[0, CLASS_SPAN)``: ``time.time()`` (≈1.7e9) and ``time.monotonic()`` both do for the next
three centuries, and keys outside are clamped so that a key can never leak into another class.
A double holds the top class (≈3e10) to about 4 µs, far finer than any deadline we compare.
"""

from __future__ import annotations

import math
from enum import IntEnum

CLASS_SPAN = 1e10
"""Width of one class in key seconds (≈317 years)."""


class Priority(IntEnum):
    """Lower is more urgent. A job's class is the most urgent reason anyone has for it."""

    URGENT = 0  # requested over HTTP and not ready, or the first segment after a seek
    PLAYING = 1  # ahead of a playing session's playhead, within its horizon
    PAUSED = 2  # under or just after a paused session's playhead
    EXPORT = 3  # needed by an export; nobody is watching it


def encode_priority(klass: Priority, key: float) -> float:
    """The float a job is queued under: sorts by ``klass``, then by ``key``."""
    if not math.isfinite(key):
        raise ValueError(f"priority key must be finite, got {key!r}")
    return klass * CLASS_SPAN + min(max(key, 0.0), CLASS_SPAN - 1.0)


def priority_class(priority: float) -> Priority:
    """The class a queued priority was encoded with."""
    return Priority(min(max(int(priority // CLASS_SPAN), 0), max(Priority)))


def priority_key(priority: float) -> float:
    """The key within the class (a time in seconds)."""
    return priority - priority_class(priority) * CLASS_SPAN
