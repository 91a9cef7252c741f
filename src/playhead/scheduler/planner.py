"""The event-driven planner: each event replans only the render it touches.

With absolute deadlines a playing session's needs do not change while it plays undisturbed,
so the planner reacts to events — a report that changes the plan (seek, pause, rate, a new
segment under the playhead), a departed session, an HTTP request and its end, a job's change
in the queue, an export — and replans only the render the event touches. The one global input,
the fair shares of an overloaded fleet, is kept incrementally: the total load is a sum per
effect, so it costs nothing while the workers keep up.

It keeps a mirror of what it has put in the queue (job id → priority) and diffs each render's
needs against that, so it sends the queue only what changed. Job changes reported by the queue
(`changed`) keep the mirror true; `resync` rebuilds it from the queue, and `replan_all` (a new
planner's first plan, and a periodic safety net) replans every render.

Pure like the rest of `scheduler/`: no I/O, no clock (``now`` is passed in); the caller applies
the returned `Ops` to the queue.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping

from playhead.queue import JobState
from playhead.scheduler._demand import Demand
from playhead.scheduler.cost import CostModel
from playhead.scheduler.model import (
    RenderInfo,
    RenderState,
    SegmentState,
    Session,
    parse_job_id,
    segment_job_id,
)
from playhead.scheduler.ops import Ops
from playhead.scheduler.plan import PolicyBase, load
from playhead.scheduler.priority import CLASS_SPAN
from playhead.scheduler.shares import fair_shares

UNKNOWN = float("inf")  # the priority of a queued job the planner did not put there


class _Render:
    """One render as the planner sees it, kept up to date event by event."""

    def __init__(self, info: RenderInfo) -> None:
        self.info = info
        self.states: dict[int, SegmentState] = {}
        self.running_since: dict[int, float] = {}
        self.urgent_by: dict[int, dict[str, float]] = defaultdict(dict)  # seeks, by session
        self.urgent: dict[int, float] = {}
        self.requested_by: dict[int, dict[str, float]] = defaultdict(dict)  # by request
        self.requested: dict[int, float] = {}
        self.exports: dict[str, float] = {}  # export id → since
        self.exports_sent: set[str] = set()
        self.sessions: set[str] = set()
        self.queued: dict[str, float] = {}  # what this planner believes waits in the queue
        self.failed_until: dict[int, float] = {}
        self.errors: dict[int, str] = {}
        self.unneeded_running: set[str] = set()
        self.ready = 0
        self.view = self._view()

    def _view(self) -> RenderState:
        since = min(self.exports.values()) if self.exports else None
        return RenderState(
            self.info, self.states, self.running_since, self.urgent, self.requested, since
        )

    def set_state(self, k: int, state: SegmentState) -> None:
        old = self.states.get(k, SegmentState.IDLE)
        self.ready += (state is SegmentState.READY) - (old is SegmentState.READY)
        if state is SegmentState.IDLE:
            self.states.pop(k, None)
        else:
            self.states[k] = state
        if state is not SegmentState.RUNNING:
            self.running_since.pop(k, None)
        if state is not SegmentState.FAILED:
            self.failed_until.pop(k, None)
            self.errors.pop(k, None)

    def mark(self, which: str, k: int, owner: str, since: float | None) -> None:
        """Add (since given) or remove an owner's urgent or requested mark on segment k."""
        by = self.urgent_by if which == "urgent" else self.requested_by
        flat = self.urgent if which == "urgent" else self.requested
        if since is None:
            by[k].pop(owner, None)
        else:
            by[k][owner] = since
        if by[k]:
            flat[k] = min(by[k].values())
        else:
            by.pop(k, None)
            flat.pop(k, None)

    def clear_marks(self, k: int) -> None:
        for by, flat in ((self.urgent_by, self.urgent), (self.requested_by, self.requested)):
            by.pop(k, None)
            flat.pop(k, None)

    def set_exports(self, exports: dict[str, float]) -> None:
        self.exports = exports
        self.exports_sent &= set(exports)
        self.view = self._view()


class Planner:
    def __init__(
        self,
        policy: PolicyBase,
        cost: CostModel | None = None,
        failure_cooldown_s: float = 30.0,
        share_tolerance: float = 0.05,
    ) -> None:
        self.policy = policy
        self.cost = cost or CostModel()
        self.failure_cooldown_s = failure_cooldown_s
        self.share_tolerance = share_tolerance
        self.workers = 0
        self.renders: dict[str, _Render] = {}
        self.sessions: dict[str, Session] = {}
        self.deadlines: dict[str, float] = {}  # job id → the playing deadline it was planned for
        self._rate_fps: dict[str, float] = defaultdict(float)  # effect → Σ fps·rate, moving
        self._shares: dict[str, float | None] = {}
        self._overloaded = False
        self._urgent_waiting: set[str] = set()
        self._unneeded: set[str] = set()  # running jobs no render needs any more
        self._interrupted: set[str] = set()
        self._cooldowns: list[tuple[float, str, int]] = []  # (until, render, k) of failures
        self._spf_used: dict[str, float] = {}  # cost per frame the current shares assumed
        self._stalled: set[str] = set()  # sessions whose deadlines move with time
        self._planned: dict[str, Session] = {}  # each session's report at its render's last
        # full replan: steady reports may drift from it by the policy's tolerance, no more

    # ---- what the planner knows -----------------------------------------------------------

    def knows(self, render_id: str) -> bool:
        return render_id in self.renders

    def add_render(self, info: RenderInfo, ready: Iterable[int] = ()) -> None:
        """Make a render known, with the segments the store already has."""
        if info.id in self.renders:
            return
        r = _Render(info)
        for k in ready:
            if 0 <= k < info.segments:
                r.set_state(k, SegmentState.READY)
        self.renders[info.id] = r

    def drop_render(self, render_id: str) -> Ops:
        """The render is gone (its asset was deleted): cancel its work, forget its viewers."""
        ops = Ops()
        r = self.renders.pop(render_id, None)
        if r is None:
            return ops
        ops.cancel.extend(sorted(r.queued))
        ops.interrupt.extend(segment_job_id(render_id, k) for k in sorted(r.running_since))
        ops.failed_exports.extend((eid, "the asset was deleted") for eid in sorted(r.exports))
        for job_id in r.queued:
            self._urgent_waiting.discard(job_id)
            self.deadlines.pop(job_id, None)
        self._unneeded -= r.unneeded_running
        for sid in list(r.sessions):
            self._forget_session(sid)
        return ops

    def segment_state(self, render_id: str, k: int) -> SegmentState:
        r = self.renders.get(render_id)
        return r.states.get(k, SegmentState.IDLE) if r else SegmentState.IDLE

    def failure(self, render_id: str, k: int) -> str | None:
        r = self.renders.get(render_id)
        return r.errors.get(k) if r else None

    def queued(self) -> dict[str, float]:
        return {j: p for r in self.renders.values() for j, p in r.queued.items()}

    def playing_rate(self) -> dict[str, float]:
        """Effect → Σ fps · rate over the sessions playing it: frames per second to keep up."""
        return {e: x for e, x in self._rate_fps.items() if x > 1e-9}

    # ---- sessions ---------------------------------------------------------------------------

    def report(self, session: Session, now: float) -> Ops:
        """A session's playhead report (the caller forwards the ones that change the plan)."""
        ops = Ops()
        if session.render not in self.renders:
            raise KeyError(f"unknown render {session.render}")
        old = self.sessions.get(session.id)
        if old is not None and old.render != session.render:
            self._forget_session(session.id)
            self._replan(self.renders.get(old.render), now, ops)
            old = None
        r = self.renders[session.render]
        seek = old is not None and self._is_seek(old, session, r.info)
        if seek:
            for k in [k for k, by in r.urgent_by.items() if session.id in by]:
                r.mark("urgent", k, session.id, None)
            k = r.info.segment_of(session.playhead)
            if r.states.get(k) is not SegmentState.READY:
                r.mark("urgent", k, session.id, now)
        only = None if seek else self._steady(old, session, r, now)
        self._unload(old)
        self.sessions[session.id] = session
        r.sessions.add(session.id)
        self._load(session)
        self._update_shares(now, ops, changed=old is None or old.rate != session.rate)
        self._replan(r, now, ops, only)
        return ops

    def _steady(self, old: Session | None, new: Session, r: _Render, now: float) -> set[int] | None:
        """For a viewer going on undisturbed, the only segments whose needs can have changed
        (the policy says which); None when the whole render must be replanned: a new viewer,
        an overloaded fleet (shares move), or a stalled viewer of the render (its deadlines
        move with time)."""
        planned = self._planned.get(new.id)
        if old is None or planned is None or self._overloaded or old.id in self._stalled:
            return None
        edges = self.policy.edges(planned, old, new, r.view)
        if edges is None or self._is_stalled(new, r, now):
            return None
        others = (self.sessions[sid] for sid in r.sessions if sid != new.id)
        if any(self._is_stalled(s, r, now) for s in others):
            return None  # their deadlines moved with the clock: replan them too
        return edges

    def _is_stalled(self, s: Session, r: _Render, now: float) -> bool:
        """Has the player reached a segment that is not ready (so deadlines move with time)?"""
        if not s.moving:
            return False
        info, states = r.info, r.states
        k, end = info.segment_of(s.playhead), self.policy.horizon_end(s, r.view)
        while k <= end and states.get(k) is SegmentState.READY:
            k += 1
        if k > end:  # all it needs is ready
            self._stalled.discard(s.id)
            return False
        stuck = max(min(s.playhead, info.frames - 1), info.first_frame(k))
        at = s.playhead + (now - s.reported_at) * info.fps * s.rate
        stalled = at >= stuck and (now > s.reported_at or stuck > s.playhead)
        if stalled:
            self._stalled.add(s.id)
        else:
            self._stalled.discard(s.id)
        return stalled

    def leave(self, session_id: str, now: float) -> Ops:
        ops = Ops()
        old = self.sessions.get(session_id)
        if old is None:
            return ops
        self._forget_session(session_id)
        self._update_shares(now, ops, changed=True)
        self._replan(self.renders.get(old.render), now, ops)
        return ops

    def _forget_session(self, session_id: str) -> None:
        old = self.sessions.pop(session_id, None)
        if old is None:
            return
        self._unload(old)
        self._shares.pop(session_id, None)
        self._stalled.discard(session_id)
        self._planned.pop(session_id, None)
        r = self.renders.get(old.render)
        if r is not None:
            r.sessions.discard(session_id)
            for k in [k for k, by in r.urgent_by.items() if session_id in by]:
                r.mark("urgent", k, session_id, None)

    @staticmethod
    def _is_seek(old: Session, new: Session, info: RenderInfo) -> bool:
        elapsed = max(0.0, new.reported_at - old.reported_at)
        expected = old.playhead + (elapsed * info.fps * old.rate if old.moving else 0)
        return abs(new.playhead - expected) > info.segment_frames

    # ---- requests and exports ---------------------------------------------------------------

    def request(self, render_id: str, k: int, owner: str, now: float) -> Ops:
        """A player waits for segment k, which its replica just found missing from the store."""
        ops = Ops()
        r = self.renders[render_id]
        if r.states.get(k) is SegmentState.READY:
            r.set_state(k, SegmentState.IDLE)  # evicted since: render it again
        r.mark("requested", k, owner, now)
        self._replan(r, now, ops)
        return ops

    def unrequest(self, render_id: str, k: int, owner: str, now: float) -> Ops:
        """The request is over (served, timed out, or its client went away)."""
        ops = Ops()
        r = self.renders.get(render_id)
        if r is not None and owner in r.requested_by.get(k, {}):
            r.mark("requested", k, owner, None)
            self._replan(r, now, ops)
        return ops

    def export(self, render_id: str, export_id: str, since: float, now: float) -> Ops:
        ops = Ops()
        r = self.renders[render_id]
        failed = next(iter(sorted(r.errors.items())), None)
        if failed is not None:
            k, error = failed
            ops.failed_exports.append((export_id, f"segment {k} failed: {error}"))
            return ops
        r.set_exports({**r.exports, export_id: since})
        self._replan(r, now, ops)
        return ops

    def unexport(self, render_id: str, export_id: str, now: float) -> Ops:
        ops = Ops()
        r = self.renders.get(render_id)
        if r is not None and export_id in r.exports:
            r.set_exports({e: t for e, t in r.exports.items() if e != export_id})
            self._replan(r, now, ops)
        return ops

    # ---- the queue and the workers ----------------------------------------------------------

    def changed(
        self,
        job_id: str,
        state: JobState,
        now: float,
        result: Mapping[str, object] | None = None,
        error: str | None = None,
    ) -> Ops:
        """A change the queue reported (ours or any replica's, in order)."""
        ops = Ops()
        try:
            render_id, k = parse_job_id(job_id)
        except ValueError:
            return ops  # not a segment job
        r = self.renders.get(render_id)
        if r is None or not 0 <= k < r.info.segments:
            return ops
        self._interrupted.discard(job_id)
        if state is JobState.QUEUED:
            if job_id in r.queued:
                return ops  # the echo of our own submission: the mirror has it already
            r.queued[job_id] = UNKNOWN  # e.g. a reaped job back in the queue
            r.set_state(k, SegmentState.QUEUED)
        elif state is JobState.CANCELLED and job_id not in r.queued:
            return ops  # the echo of our own cancel: already forgotten
        else:
            r.queued.pop(job_id, None)
            self._urgent_waiting.discard(job_id)
            if state is JobState.RUNNING:
                r.set_state(k, SegmentState.RUNNING)
                r.running_since[k] = now
                # it was needed and still is: no need moves (what moves with the clock — a
                # stalled viewer's deadlines, the work left under overload — the tick replans)
                return ops
            elif state is JobState.CANCELLED:
                r.set_state(k, SegmentState.IDLE)
            elif state is JobState.DONE:
                # a viewer stalled on it (or anywhere): its later deadlines move, replan
                stalled = any(self._is_stalled(self.sessions[sid], r, now) for sid in r.sessions)
                r.set_state(k, SegmentState.READY)
                r.clear_marks(k)
                r.unneeded_running.discard(job_id)
                self._unneeded.discard(job_id)
                if self._learn_cost(r, result):
                    self._update_shares(now, ops, changed=True)
                if not (r.exports or self._overloaded or stalled):
                    return ops  # nobody is stalled: no deadline moves
            elif state is JobState.FAILED:
                r.set_state(k, SegmentState.FAILED)
                r.failed_until[k] = now + self.failure_cooldown_s
                heapq.heappush(self._cooldowns, (r.failed_until[k], render_id, k))
                r.errors[k] = error or "failed"
                r.clear_marks(k)
                why = f"segment {k} failed: {r.errors[k]}"
                ops.failed_exports.extend((eid, why) for eid in sorted(r.exports))
                r.set_exports({})
        self._replan(r, now, ops)
        return ops

    def _learn_cost(self, r: _Render, result: Mapping[str, object] | None) -> bool:
        """Fold a measured cost in; True when it moved enough to matter for the shares."""
        if not result:
            return False
        frames, seconds = result.get("frames"), result.get("seconds")
        if not (isinstance(frames, int) and frames > 0 and isinstance(seconds, (int, float))):
            return False
        effect = r.info.effect
        self.cost.update(effect, float(seconds), frames)
        used = self._spf_used.get(effect)
        now_spf = self.cost.seconds_per_frame(effect)
        return used is None or abs(now_spf - used) > self.share_tolerance * used

    def set_workers(self, workers: int, now: float) -> Ops:
        ops = Ops()
        if workers != self.workers:
            self.workers = workers
            self._update_shares(now, ops, changed=True)
        return ops

    def tick(self, now: float) -> Ops:
        """Timers: a failed segment's cool-down is over, so it may be tried again."""
        ops = Ops()
        touched: set[str] = set()
        while self._cooldowns and self._cooldowns[0][0] <= now:
            until, render_id, k = heapq.heappop(self._cooldowns)
            r = self.renders.get(render_id)
            if r is not None and r.failed_until.get(k) == until:
                r.set_state(k, SegmentState.IDLE)
                touched.add(render_id)
        # a stalled viewer's deadlines move with the clock (see the deadline policy's rule 4)
        touched |= {self.sessions[sid].render for sid in self._stalled if sid in self.sessions}
        for render_id in sorted(touched):
            self._replan(self.renders[render_id], now, ops)
        self._update_shares(now, ops, changed=True)  # the cost model moves with completions
        return ops

    def replan_all(self, now: float) -> Ops:
        ops = Ops()
        self._update_shares(now, ops, changed=True)
        for r in self.renders.values():
            self._replan(r, now, ops)
        return ops

    def resync(self, waiting: Mapping[str, float], running: Iterable[str], now: float) -> Ops:
        """Rebuild the mirror from the queue itself (a new planner, or drift), then replan."""
        for r in self.renders.values():
            r.queued.clear()
            for k, state in list(r.states.items()):
                if state in (SegmentState.QUEUED, SegmentState.RUNNING):
                    r.set_state(k, SegmentState.IDLE)
        self._urgent_waiting.clear()
        for job_id, priority in waiting.items():
            self._note(job_id, JobState.QUEUED, priority, now)
        for job_id in running:
            self._note(job_id, JobState.RUNNING, None, now)
        return self.replan_all(now)

    def _note(self, job_id: str, state: JobState, priority: float | None, now: float) -> None:
        try:
            render_id, k = parse_job_id(job_id)
        except ValueError:
            return
        r = self.renders.get(render_id)
        if r is None or not 0 <= k < r.info.segments:
            return
        if state is JobState.QUEUED and priority is not None:
            self._queue(r, job_id, priority, None)
            r.set_state(k, SegmentState.QUEUED)
        elif state is JobState.RUNNING:
            r.set_state(k, SegmentState.RUNNING)
            r.running_since[k] = now

    # ---- fair shares ------------------------------------------------------------------------

    def _load(self, s: Session) -> None:
        r = self.renders.get(s.render)
        if r is not None and s.moving:
            self._rate_fps[r.info.effect] += r.info.fps * s.rate

    def _unload(self, s: Session | None) -> None:
        if s is None:
            return
        r = self.renders.get(s.render)
        if r is not None and s.moving:
            self._rate_fps[r.info.effect] -= r.info.fps * s.rate

    def _update_shares(self, now: float, ops: Ops, changed: bool) -> None:
        """Keep fair shares current: free while the workers keep up (a sum per effect),
        water-filling only when they cannot; replan the renders whose share moved."""
        if not changed:
            return
        self._spf_used = {e: self.cost.seconds_per_frame(e) for e in self._rate_fps}
        total = sum(self._spf_used[e] * x for e, x in self._rate_fps.items())
        overloaded = self.workers > 0 and total > self.workers
        if not overloaded and not self._overloaded:
            return
        self._overloaded = overloaded
        moving = [s for s in self.sessions.values() if s.moving]
        new: dict[str, float | None] = {}
        if overloaded:
            loads = [load(s, self.renders[s.render].info, self.cost) for s in moving]
            new = dict(zip([s.id for s in moving], fair_shares(loads, self.workers), strict=True))
        touched: set[str] = set()
        for s in moving:
            before, after = self._shares.get(s.id), new.get(s.id)
            if (before is None) != (after is None) or (
                before is not None
                and after is not None
                and abs(after - before) > self.share_tolerance * before
            ):
                touched.add(s.render)
        self._shares = new
        for render_id in sorted(touched):
            self._replan(self.renders.get(render_id), now, ops)

    # ---- one render -------------------------------------------------------------------------

    def _replan(
        self, r: _Render | None, now: float, ops: Ops, only: set[int] | None = None
    ) -> None:
        """Diff a render's needs against what it has queued: all its segments, or ``only``
        those an event can have changed."""
        if r is None:
            return
        demand = Demand(only)
        sessions = [self.sessions[s] for s in r.sessions]
        if only is None:
            for s in sessions:
                self._is_stalled(s, r, now)
                self._planned[s.id] = s
        self.policy.needs(demand, now, r.view, sessions, self._shares, self.cost)
        queued = r.queued
        if only is not None:
            ids = (segment_job_id(r.info.id, k) for k in only)
            queued = {j: r.queued[j] for j in ids if j in r.queued}
        plan = demand.plan({r.info.id: r.view}, queued, self.policy.tolerance_s)
        for spec in plan.submit:
            self._queue(r, spec.job_id, spec.priority, spec.deadline)
            r.set_state(spec.segment, SegmentState.QUEUED)
        ops.submit.extend(plan.submit)
        for job_id, priority in plan.reprioritise:
            self._queue(r, job_id, priority, demand.deadline(job_id))
        ops.reprioritise.extend(plan.reprioritise)
        for job_id in plan.cancel:
            r.queued.pop(job_id, None)
            self._urgent_waiting.discard(job_id)
            self.deadlines.pop(job_id, None)
            r.set_state(parse_job_id(job_id)[1], SegmentState.IDLE)
        ops.cancel.extend(plan.cancel)
        running = {
            segment_job_id(r.info.id, k) for k in r.running_since if only is None or k in only
        }
        unneeded = running - demand.running_wanted
        if only is None:
            self._unneeded -= r.unneeded_running
            r.unneeded_running = unneeded
        else:
            self._unneeded -= running & r.unneeded_running
            r.unneeded_running = (r.unneeded_running - running) | unneeded
        self._unneeded |= unneeded
        if r.exports and r.ready == r.info.segments:
            for eid, since in sorted(r.exports.items()):
                if eid not in r.exports_sent:
                    r.exports_sent.add(eid)
                    ops.exports.append((eid, since))
        self._interrupt(ops)

    def _queue(self, r: _Render, job_id: str, priority: float, deadline: float | None) -> None:
        r.queued[job_id] = priority
        if priority < CLASS_SPAN:
            self._urgent_waiting.add(job_id)
        else:
            self._urgent_waiting.discard(job_id)
        if deadline is not None:
            self.deadlines[job_id] = deadline

    def _interrupt(self, ops: Ops) -> None:
        """Running jobs nobody needs any more stop (between batches) when urgent work waits;
        otherwise they finish and are cached."""
        if not self._urgent_waiting:
            return
        for job_id in sorted(self._unneeded - self._interrupted):
            self._interrupted.add(job_id)
            ops.interrupt.append(job_id)
