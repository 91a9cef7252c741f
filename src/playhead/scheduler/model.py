"""What the scheduler reads and what it answers: frozen data, rebuilt by the caller every plan.

The server builds these from its own records (renders, WebSocket sessions, the store, the
queue) and calls a policy; the policy keeps nothing between calls, so a restarted server — or
a second replica — plans exactly as the first would. Times are seconds on the caller's clock
(see `priority.py` for the range); frames are mezzanine frame indices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from playhead.scheduler.priority import Priority
from playhead.types import FrameRange


class SegmentState(StrEnum):
    """A segment's state as the API shows it (``GET /api/renders/{id}``)."""

    IDLE = "idle"
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


SETTLED = frozenset({SegmentState.READY, SegmentState.RUNNING, SegmentState.FAILED})
"""States a policy never submits: ready is cached, running finishes and gets cached, failed
stays failed until the server decides to retry it (by reporting it idle again)."""


@dataclass(frozen=True)
class RenderInfo:
    """The shape of one render: enough to turn frames into segments and seconds."""

    id: str
    fps: float
    segment_frames: int
    frames: int
    effect: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"render {self.id}: fps must be positive, got {self.fps!r}")
        if self.segment_frames <= 0 or self.frames <= 0:
            raise ValueError(
                f"render {self.id}: expected positive frames and segment_frames, "
                f"got {self.frames} and {self.segment_frames}"
            )

    @cached_property
    def segments(self) -> int:
        return -(-self.frames // self.segment_frames)

    def first_frame(self, k: int) -> int:
        return k * self.segment_frames

    def frame_range(self, k: int) -> FrameRange:
        if not 0 <= k < self.segments:
            raise IndexError(f"segment {k} is out of range 0..{self.segments - 1}")
        start = k * self.segment_frames
        return FrameRange(start, min(start + self.segment_frames, self.frames))

    def segment_of(self, frame: int) -> int:
        """The segment holding ``frame``, clamped to the render (a playhead past the end is on
        the last segment)."""
        return min(max(frame, 0), self.frames - 1) // self.segment_frames


@dataclass(frozen=True)
class RenderState:
    """One render as the scheduler sees it at one instant.

    ``states``: segments not listed are idle. ``running_since``: when each running segment was
    claimed, to estimate the work left on it. ``urgent``: segment → the time it became urgent
    (an HTTP request waiting for it, or the first segment after a seek); the server adds an
    entry when the need arises and removes it when the segment is ready or the request is gone.
    One mapping serves both as the urgent set and as the request times that order it.
    ``requested``: segment → when a player asked for it over HTTP (not ready yet). Each policy
    decides what a request means: `on-demand` serves exactly these; `deadline` makes one urgent
    unless a playing session's horizon already orders it (a player filling its buffer).
    ``export_requested_at``: set while an export of this render is in progress.
    """

    info: RenderInfo
    states: Mapping[int, SegmentState] = field(default_factory=dict)
    running_since: Mapping[int, float] = field(default_factory=dict)
    urgent: Mapping[int, float] = field(default_factory=dict)
    requested: Mapping[int, float] = field(default_factory=dict)
    export_requested_at: float | None = None

    def __post_init__(self) -> None:
        n = self.info.segments
        for what, keys in (
            ("states", self.states),
            ("running_since", self.running_since),
            ("urgent", self.urgent),
            ("requested", self.requested),
        ):
            bad = [k for k in keys if not 0 <= k < n]
            if bad:
                raise ValueError(
                    f"render {self.info.id}: {what} names segments {bad} outside 0..{n - 1}"
                )

    def state(self, k: int) -> SegmentState:
        return self.states.get(k, SegmentState.IDLE)


@dataclass(frozen=True)
class Session:
    """One viewer of one render, as last reported (over the WebSocket, or inferred from
    segment requests). ``reported_at`` is the server's clock when the report arrived.

    A session is *moving* when it is playing at a positive rate; rate 0 counts as paused.
    Reverse playback does not exist in HLS players, so a negative rate is an error.
    """

    id: str
    render: str
    playhead: int
    playing: bool
    rate: float = 1.0
    reported_at: float = 0.0

    def __post_init__(self) -> None:
        if self.playhead < 0:
            raise ValueError(f"session {self.id}: playhead must be >= 0, got {self.playhead}")
        if not (math.isfinite(self.rate) and self.rate >= 0):
            raise ValueError(f"session {self.id}: rate must be >= 0, got {self.rate!r}")
        if not math.isfinite(self.reported_at):
            raise ValueError(f"session {self.id}: reported_at must be finite")

    @property
    def moving(self) -> bool:
        return self.playing and self.rate > 0

    def deadline(self, info: RenderInfo, k: int) -> float | None:
        """When the playhead reaches segment ``k`` if playback runs on undisturbed:
        ``reported_at + (first_frame(k) − playhead) / (fps · rate)``, never before the report
        (the segment under the playhead is needed now). None for a session that is not moving.
        """
        if not self.moving:
            return None
        playhead = min(self.playhead, info.frames - 1)
        ahead = max(0, info.first_frame(k) - playhead)
        return self.reported_at + ahead / (info.fps * self.rate)


def segment_job_id(render: str, k: int) -> str:
    """The deterministic job id of segment ``k`` of ``render``: the same need, the same job."""
    return f"{render}:{k}"


def parse_job_id(job_id: str) -> tuple[str, int]:
    """Inverse of `segment_job_id`; ``ValueError`` for an id it did not make."""
    render, sep, k = job_id.rpartition(":")
    if not sep or not render or not k.isdigit():
        raise ValueError(f"not a segment job id: {job_id!r}")
    return render, int(k)


@dataclass(frozen=True)
class JobSpec:
    """One segment to render, with the priority it should be queued under.

    ``deadline`` is the earliest time a playing viewer is expected to need it (None when only
    paused sessions, exports or HTTP requests without a playing session want it); metrics
    compare it with the completion time. ``priority`` may differ from it: it carries the class
    and, under overload, a postponed key (see `deadline.py`). ``depends_on`` lists segments
    of the same render whose output this one reads (a mask propagated along the video); it is
    submitted once they are ready. Empty for independent segments.
    """

    render: str
    segment: int
    frames: FrameRange
    priority: float
    klass: Priority
    deadline: float | None = None
    depends_on: tuple[int, ...] = ()

    @property
    def job_id(self) -> str:
        return segment_job_id(self.render, self.segment)


@dataclass(frozen=True)
class Plan:
    """What to do to the queue, most urgent first in each list.

    ``reprioritise`` and ``cancel`` only name jobs that were queued when the plan was made;
    running jobs are never cancelled (they finish and are cached).
    """

    submit: tuple[JobSpec, ...] = ()
    reprioritise: tuple[tuple[str, float], ...] = ()
    cancel: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.submit or self.reprioritise or self.cancel)
