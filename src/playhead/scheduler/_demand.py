"""From "which segments are needed, and how badly" to a `Plan`, shared by every policy.

A policy only states needs; `Demand` merges them (one job per segment, at the best priority
any need gave it) and diffs the result against what is already queued. Keeping the diff in
one place is what makes every policy obey the same rules: settled segments are never
submitted, unneeded queued jobs are cancelled, running jobs are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from playhead.scheduler.model import (
    SETTLED,
    JobSpec,
    Plan,
    RenderState,
    SegmentState,
    parse_job_id,
    segment_job_id,
)
from playhead.scheduler.priority import Priority, encode_priority


class _Need:
    """One wanted segment: the best priority any need gave it, and the earliest deadline."""

    __slots__ = ("deadline", "depends_on", "k", "klass", "priority", "render")

    def __init__(
        self,
        render: RenderState,
        k: int,
        priority: float,
        klass: Priority,
        deadline: float | None,
        depends_on: tuple[int, ...],
    ) -> None:
        self.render, self.k, self.priority, self.klass = render, k, priority, klass
        self.deadline, self.depends_on = deadline, depends_on

    def spec(self) -> JobSpec:
        return JobSpec(
            render=self.render.info.id,
            segment=self.k,
            frames=self.render.info.frame_range(self.k),
            priority=self.priority,
            klass=self.klass,
            deadline=self.deadline,
            depends_on=self.depends_on,
        )


class Demand:
    """The jobs a policy wants queued, keyed by job id; and the running ones still wanted.

    Needs are recorded cheaply (a policy states dozens per event); a `JobSpec` is made only
    for what is submitted.
    """

    def __init__(self, only: AbstractSet[int] | None = None) -> None:
        self._needs: dict[str, _Need] = {}
        self.running_wanted: set[str] = set()  # running jobs some need still covers
        self.only = only  # record needs of these segments only (an incremental replan)

    def deadline(self, job_id: str) -> float | None:
        need = self._needs.get(job_id)
        return need.deadline if need else None

    def need(
        self,
        render: RenderState,
        k: int,
        klass: Priority,
        key: float,
        deadline: float | None = None,
        depends_on: tuple[int, ...] = (),
    ) -> bool:
        """Record that segment ``k`` is wanted at (``klass``, ``key``); False if it is settled.

        The job keeps the most urgent priority over all needs, and the earliest deadline.
        """
        if self.only is not None and k not in self.only:
            return render.states.get(k) not in SETTLED
        state = render.states.get(k)
        if state in SETTLED:
            if state is SegmentState.RUNNING:
                self.running_wanted.add(segment_job_id(render.info.id, k))
            return False
        priority = encode_priority(klass, key)
        job_id = segment_job_id(render.info.id, k)
        old = self._needs.get(job_id)
        if old is None:
            self._needs[job_id] = _Need(render, k, priority, klass, deadline, depends_on)
            return True
        if deadline is not None and (old.deadline is None or deadline < old.deadline):
            old.deadline = deadline
        if priority < old.priority:
            old.priority, old.klass = priority, klass
        return True

    def need_export(self, render: RenderState) -> None:
        """An export in progress needs every segment, in order, first export first."""
        since = render.export_requested_at
        if since is None:
            return
        for k in range(render.info.segments):
            self.need(render, k, Priority.EXPORT, since + media_time(render, k))

    def plan(
        self,
        renders: Mapping[str, RenderState],
        queued: Mapping[str, float],
        tolerance: float = 0.0,
    ) -> Plan:
        """Diff the demand against the queue.

        ``queued`` is job id → priority for jobs waiting in the queue (not claimed). A queued
        job is reprioritised when its priority moved by more than ``tolerance`` (a class change
        always does); it is cancelled when nothing needs it, unless the render says it is
        running. A job whose inputs (``depends_on``) are not ready yet is not submitted: it
        waits for them in the planner, not in the queue. Ids the scheduler did not make are
        left alone.
        """
        wanted = {
            job_id: need
            for job_id, need in self._needs.items()
            if not need.depends_on or _inputs_ready(need, renders.get(need.render.info.id))
        }
        submit = [need.spec() for job_id, need in wanted.items() if job_id not in queued]
        moved = [
            (job_id, need.priority)
            for job_id, need in wanted.items()
            if job_id in queued and abs(queued[job_id] - need.priority) > tolerance
        ]
        cancel = [
            job_id for job_id in queued if job_id not in wanted and _cancellable(job_id, renders)
        ]
        submit.sort(key=lambda job: (job.priority, job.job_id))
        moved.sort(key=lambda item: (item[1], item[0]))
        cancel.sort()
        return Plan(submit=tuple(submit), reprioritise=tuple(moved), cancel=tuple(cancel))


def media_time(render: RenderState, k: int) -> float:
    """Media time of the first frame of segment ``k``, in seconds."""
    return render.info.first_frame(k) / render.info.fps


def _inputs_ready(need: _Need, render: RenderState | None) -> bool:
    return render is not None and all(
        render.state(d) is SegmentState.READY for d in need.depends_on
    )


def _cancellable(job_id: str, renders: Mapping[str, RenderState]) -> bool:
    try:
        render_id, k = parse_job_id(job_id)
    except ValueError:
        return False  # not one of ours
    render = renders.get(render_id)
    if render is None or not 0 <= k < render.info.segments:
        return True  # nobody watches or exports this render any more
    return render.state(k) is not SegmentState.RUNNING
