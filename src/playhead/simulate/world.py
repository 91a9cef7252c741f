"""The simulated fleet: the real planner, the real queue and the real demand signal, on a
driven clock.

Nothing here sleeps or renders. Viewers arrive over the day and follow their scripts; their
players advance through segments that are ready and stall on those that are not; their
reports go to the same `Planner` the server runs, whose operations go to the same
`MemoryQueue` (one per device class, as the fleet routes them). Workers are records that take
``start_s`` to start, claim from their class's queue, hold a lease, finish after the job's
simulated render time, and may be preempted with a notice. The autoscaler polls a strategy's
metric as KEDA would and moves the worker count as the HPA would.

Every strategy meets the same viewers: scripts are drawn per viewer from the seed.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playhead.queue import Change, Job, JobState, Lease, LeaseLost, MemoryQueue
from playhead.scheduler import CostModel, DeadlinePolicy, RenderInfo, SegmentState, Session
from playhead.scheduler.capacity import ScalingRule, Trend, demand
from playhead.scheduler.model import parse_job_id
from playhead.scheduler.ops import Ops
from playhead.scheduler.planner import Planner
from playhead.simulate.hpa import Autoscaler, Behaviour, Strategy
from playhead.simulate.results import Results
from playhead.simulate.scenario import Scenario, Script, script

EPOCH = 1_000_000.0  # the simulated clock starts here (priorities need positive times)
TICK_S = 1.0  # the planning replica's housekeeping tick
LOW_SLACK_TARGET = 10.0  # the safety-net trigger: low-slack jobs per worker


@dataclass
class _Worker:
    name: str
    klass: str
    created: float
    ready_at: float
    state: str = "starting"  # starting, idle, busy, draining, gone
    lease: Lease | None = None
    ends_at: float = 0.0
    busy_s: float = 0.0
    started: float = 0.0  # when the job in hand was claimed
    busy_from: float = 0.0  # when its busy time started counting (the claim, or the warm-up)
    gone_at: float | None = None
    stopping: bool = False  # told to go (scale-down or preemption): claims nothing more


@dataclass
class _Viewer:
    id: str
    script: Script
    info: RenderInfo
    pos: float = 0.0
    playing: bool = True
    rate: float = 1.0
    at: float = 0.0  # when pos was last brought up to date
    waiting: tuple[int, float, str] | None = None  # (segment, since, "seek" | "stall")
    epoch: int = 0  # bumps on every change: older scheduled boundaries are stale
    gone: bool = False


class World:
    def __init__(
        self,
        scenario: Scenario,
        strategy: Strategy,
        behaviour: Behaviour | None = None,
        rule: ScalingRule | None = None,
    ) -> None:
        self.sc = scenario
        self.strategy = strategy
        self.rule = rule or ScalingRule()
        behaviour = behaviour or Behaviour()
        self.now = EPOCH
        # separate streams: what the viewers do must not depend on what the fleet does
        self.rng = random.Random(f"{scenario.seed}:arrivals")
        self.fleet_rng = random.Random(f"{scenario.seed}:fleet")
        self.classes = tuple(sorted({e.device for e in scenario.effects}))
        self.klass_of_effect = {e.name: e.device for e in scenario.effects}
        self.true_spf = {e.name: e.seconds_per_frame for e in scenario.effects}
        self.queues = {
            k: MemoryQueue(max_attempts=3, retry_backoff_s=0.5, clock=self.clock)
            for k in self.classes
        }
        self._changes: list[Change] = []
        for q in self.queues.values():
            q.watch(self._changes.append)
        self.planner = Planner(DeadlinePolicy(), CostModel(prior=0.01))
        self.results = Results(strategy.label)
        self._events: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = 0
        self.viewers: dict[str, _Viewer] = {}
        self.waiters: dict[tuple[str, int], list[str]] = defaultdict(list)
        self.workers: dict[str, _Worker] = {}
        self.by_class: dict[str, list[_Worker]] = {k: [] for k in self.classes}
        self.holder: dict[str, str] = {}  # job id → worker name
        self.idle: dict[str, set[str]] = {k: set() for k in self.classes}
        self.render_class: dict[str, str] = {}
        self.scalers = {k: Autoscaler(behaviour, self._initial(k)) for k in self.classes}
        self._next_viewer = 0
        self._worker_seq = 0
        self._last_sample = -math.inf
        self._pending_ops = Ops()
        self._counted_from = EPOCH
        self.trend = Trend()

    def clock(self) -> float:
        return self.now

    # ---- the event loop ---------------------------------------------------------------------

    def at(self, when: float, fn: Callable[..., Any], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._events, (when, self._seq, fn, args))

    async def run(self) -> Results:
        started = time.perf_counter()
        end = EPOCH + self.sc.day_s
        for k in self.classes:
            for _ in range(self.scalers[k].replicas):
                self._add_worker(k, warm=True)
        for _ in range(round(self.sc.concurrent(0))):  # the night's viewers are already here
            self.at(self.now + self.rng.uniform(0, 5), self._arrive)
        self.at(self.now, self._next_arrival)
        self.at(self.now + TICK_S, self._tick)
        self.at(self.now, self._poll)
        self.at(self.now + min(self.sc.warmup_s, self.sc.day_s), self._count_from_now)
        while self._events and self._events[0][0] <= end:
            when, _, fn, args = heapq.heappop(self._events)
            self.now = when
            done = fn(*args)
            if done is not None:
                await done
            await self._settle()
            self.results.events += 1
        self.now = end
        self._close()
        self.results.wall_s = time.perf_counter() - started
        return self.results

    async def _settle(self) -> None:
        """Apply the planner's operations to the queue and feed the queue's changes back to
        the planner until nothing moves; then let idle workers claim, and again."""
        while True:
            if self._pending_ops:
                ops, self._pending_ops = self._pending_ops, Ops()
                await self.apply(ops)
            elif self._changes:
                changes = self._changes.copy()  # the queues' listener holds this list
                self._changes.clear()
                for change in changes:
                    await self._changed(change)
            elif not await self._dispatch():
                return

    async def _changed(self, change: Change) -> None:
        p = self.planner
        if change.state is JobState.DONE:
            self.results.jobs += 1
            deadline = p.deadlines.get(change.job_id)
            if deadline is not None:
                self.results.deadline_jobs += 1
                self.results.deadline_misses += change.at > deadline
                result = change.result or {}
                klass = self.klass_of_effect.get(str(result.get("effect")), self.classes[0])
                self.trend.worked(klass, change.at, float(result.get("seconds", 0.0)))
        await self.apply(
            p.changed(change.job_id, change.state, change.at, change.result, change.error)
        )
        if change.state is JobState.DONE:
            render, k = parse_job_id(change.job_id)
            for vid in self.waiters.pop((render, k), ()):
                self._segment_ready(self.viewers[vid], k)

    async def apply(self, ops: Ops) -> None:
        for spec in ops.submit:
            queue = self.queues[self.render_class[spec.render]]
            await queue.submit(Job(spec.job_id, {"frames": spec.frames.count}, spec.priority))
        for job_id, priority in ops.reprioritise:
            await self._queue_of(job_id).reprioritise(job_id, priority)
        for job_id in ops.cancel:
            await self._queue_of(job_id).cancel(job_id)
        for job_id in ops.interrupt:
            if await self._queue_of(job_id).interrupt(job_id):
                name = self.holder.get(job_id)
                if name is not None:  # the holder hears it at its next renewal
                    self.at(self.now + 0.5, self._interrupted, name, job_id)

    def _queue_of(self, job_id: str) -> MemoryQueue:
        return self.queues[self.render_class[parse_job_id(job_id)[0]]]

    # ---- viewers ----------------------------------------------------------------------------

    def _next_arrival(self) -> None:
        """Arrivals as a Poisson process whose rate follows the day (by thinning)."""
        top = self.sc.peak_viewers / self.sc.session_s * 3
        gap = self.rng.expovariate(top)
        when = self.now + gap
        if self.rng.random() < self.sc.arrival_rate(when - EPOCH) / top:
            self.at(when, self._arrive)
        self.at(when, self._next_arrival)

    def _arrive(self) -> None:
        n = self._next_viewer
        self._next_viewer += 1
        s = script(self.sc, n, self.now - EPOCH)
        info = RenderInfo(f"r{n}", self.sc.fps, self.sc.segment_frames, s.frames, s.effect.name)
        self.render_class[info.id] = s.effect.device
        self.planner.add_render(info)
        v = _Viewer(f"v{n}", s, info, at=self.now)
        self.viewers[v.id] = v
        self.results.viewers += 1
        for action in s.actions:
            self.at(self.now + action.at, self._act, v.id, action.kind, action.value)
        self._seek(v, 0, "start")

    def _act(self, vid: str, kind: str, value: float) -> None:
        v = self.viewers.get(vid)
        if v is None or v.gone:
            return
        self._advance(v)
        if kind == "seek":
            self._seek(v, int(value * (v.info.frames - 1)), "seek")
        elif kind == "pause" and v.playing:
            self._stop_waiting(v)
            v.playing = False
            v.epoch += 1
            self._report(v)
        elif kind == "play" and not v.playing:
            v.playing = True
            self._report(v)
            self._go_on(v, "stall")
        elif kind == "rate":
            v.rate = value
            v.epoch += 1
            self._report(v)
            self._go_on(v, "stall")
        elif kind == "leave":
            self._stop_waiting(v)
            v.gone = True
            del self.viewers[vid]
            self._apply_now(self.planner.leave(vid, self.now))

    def _seek(self, v: _Viewer, frame: int, why: str) -> None:
        """Jump to ``frame`` and play: a user's seek, the start, or a loop to the start."""
        self._stop_waiting(v)
        v.pos, v.at, v.playing = float(frame), self.now, True
        v.epoch += 1
        self._report(v)
        self._go_on(v, why)

    def _go_on(self, v: _Viewer, why: str) -> None:
        """Play on from ``pos`` if its segment is ready, else wait for it (``why``: what the
        wait will count as: "seek", "start", "loop" or "stall")."""
        if not v.playing or v.waiting is not None:
            return
        k = v.info.segment_of(int(v.pos))
        if self.planner.segment_state(v.info.id, k) is SegmentState.READY:
            if why in ("seek", "start"):
                (self.results.seeks if why == "seek" else self.results.starts).append(0.0)
            v.at = self.now
            self._schedule_boundary(v)
        else:
            v.waiting = (k, self.now, why)
            self.waiters[(v.info.id, k)].append(v.id)

    def _segment_ready(self, v: _Viewer, k: int) -> None:
        if v.gone or v.waiting is None or v.waiting[0] != k:
            return
        _, since, why = v.waiting
        v.waiting = None
        if why in ("seek", "start"):
            (self.results.seeks if why == "seek" else self.results.starts).append(self.now - since)
        elif why == "stall":
            self.results.stalls += 1
            self.results.stall_s += self.now - since
            self.results.watch_s += self.now - since
        v.at = self.now
        self._schedule_boundary(v)

    def _stop_waiting(self, v: _Viewer) -> None:
        if v.waiting is None:
            return
        k, since, why = v.waiting
        v.waiting = None
        if why == "stall":
            self.results.stall_s += self.now - since
            self.results.watch_s += self.now - since
        waiting = self.waiters.get((v.info.id, k))
        if waiting and v.id in waiting:
            waiting.remove(v.id)

    def _advance(self, v: _Viewer) -> None:
        if v.playing and v.waiting is None:
            played = self.now - v.at
            self.results.watch_s += played
            v.pos = min(v.pos + played * v.info.fps * v.rate, v.info.frames - 1)
        v.at = self.now

    def _schedule_boundary(self, v: _Viewer) -> None:
        info = v.info
        k = info.segment_of(int(v.pos))
        nxt = (k + 1) * info.segment_frames
        dt = max(0.0, (nxt - v.pos) / (info.fps * v.rate))
        v.epoch += 1
        self.at(self.now + dt, self._boundary, v.id, v.epoch)

    def _boundary(self, vid: str, epoch: int) -> None:
        v = self.viewers.get(vid)
        if v is None or v.epoch != epoch or not v.playing or v.waiting is not None:
            return
        self._advance(v)
        nxt = (v.info.segment_of(int(v.pos)) + 1) * v.info.segment_frames
        if nxt >= v.info.frames:  # the end of the clip: start again, as an editor loops
            self._seek(v, 0, "loop")
            return
        v.pos = float(nxt)
        self._report(v)
        self._go_on(v, "stall")

    def _report(self, v: _Viewer) -> None:
        session = Session(v.id, v.info.id, int(v.pos), v.playing, v.rate, self.now)
        self._apply_now(self.planner.report(session, self.now))

    def _apply_now(self, ops: Ops) -> None:
        self._pending_ops.extend(ops)

    # ---- workers ----------------------------------------------------------------------------

    def _initial(self, klass: str) -> int:
        """Workers at the start (warm): a fixed fleet's size, or what the night needs."""
        if self.strategy.kind == "fixed":
            return self.strategy.fixed
        share = sum(e.share for e in self.sc.effects if e.device == klass) / sum(
            e.share for e in self.sc.effects
        )
        night = self.sc.concurrent(0) * share * self.sc.mean_load(0.0) / self.rule.utilisation
        return max(1, math.ceil(night))

    def _add_worker(self, klass: str, warm: bool = False) -> None:
        self._worker_seq += 1
        delay = 0.0 if warm else self.sc.start_s * self.fleet_rng.uniform(0.8, 1.2)
        w = _Worker(f"{klass}-{self._worker_seq}", klass, self.now, self.now + delay)
        self.workers[w.name] = w
        self.by_class[klass].append(w)
        self.at(w.ready_at, self._ready, w.name)
        if self.sc.preempt_per_hour > 0:
            life = self.fleet_rng.expovariate(self.sc.preempt_per_hour / 3600)
            self.at(self.now + life, self._notice, w.name)

    def _ready(self, name: str) -> None:
        w = self.workers[name]
        if w.state == "starting" and not w.stopping:
            w.state = "idle"
            self.idle[w.klass].add(name)

    async def _dispatch(self) -> bool:
        """Idle workers claim; True when anything was claimed."""
        claimed = False
        for klass, idle in self.idle.items():
            queue = self.queues[klass]
            while idle:
                name = min(idle)
                lease = await queue.claim(name, self.sc.lease_s)
                if lease is None:
                    break
                idle.discard(name)
                self._start_job(self.workers[name], lease)
                claimed = True
        return claimed

    def _start_job(self, w: _Worker, lease: Lease) -> None:
        render, _ = parse_job_id(lease.job.id)
        effect = self.planner.renders[render].info.effect if render in self.planner.renders else ""
        frames = int(lease.job.payload["frames"])
        # the same segment costs the same whichever strategy's worker renders it
        noise = random.Random(f"{self.sc.seed}:{lease.job.id}:{lease.attempt}")
        spf = self.true_spf.get(effect, 0.01)
        work = spf * frames * noise.lognormvariate(0, self.sc.jitter)
        w.state, w.lease, w.started, w.busy_from = "busy", lease, self.now, self.now
        w.ends_at = self.now + work + self.sc.overhead_s
        self.holder[lease.job.id] = w.name
        self.at(w.ends_at, self._job_done, w.name, lease.token, effect, frames)
        if w.ends_at - self.now > self.sc.lease_s / 2:
            self.at(self.now + self.sc.lease_s / 2, self._renew, w.name, lease.token)

    async def _job_done(self, name: str, token: int, effect: str, frames: int) -> None:
        w = self.workers[name]
        if w.lease is None or w.lease.token != token or w.state == "gone":
            return
        seconds = self.now - w.started
        with contextlib.suppress(LeaseLost):  # reaped meanwhile: another worker has it
            await self.queues[w.klass].complete(
                w.lease, {"frames": frames, "seconds": seconds, "effect": effect}
            )
        self._off(w)

    async def _renew(self, name: str, token: int) -> None:
        w = self.workers[name]
        if w.lease is None or w.lease.token != token or w.state == "gone":
            return
        try:
            w.lease = await self.queues[w.klass].renew(w.lease, self.sc.lease_s)
        except LeaseLost:
            return
        if w.ends_at - self.now > self.sc.lease_s / 2:
            self.at(self.now + self.sc.lease_s / 2, self._renew, name, token)

    async def _interrupted(self, name: str, job_id: str) -> None:
        """The holder heard the interrupt: it stops between batches and gives the job back."""
        w = self.workers.get(name)
        if w is None or w.lease is None or w.lease.job.id != job_id:
            return
        with contextlib.suppress(LeaseLost):
            await self.queues[w.klass].release(w.lease)
        self._off(w)

    def _off(self, w: _Worker) -> None:
        """The job in hand is over (done or given back)."""
        assert w.lease is not None
        self.holder.pop(w.lease.job.id, None)
        w.busy_s += self.now - w.busy_from
        w.lease = None
        self._idle_or_gone(w)

    def _idle_or_gone(self, w: _Worker) -> None:
        if w.stopping:
            self._gone(w)
        else:
            w.state = "idle"
            self.idle[w.klass].add(w.name)

    def _gone(self, w: _Worker) -> None:
        if w.state == "gone":
            return
        w.state, w.gone_at = "gone", self.now
        self.idle[w.klass].discard(w.name)
        self.by_class[w.klass].remove(w)

    def _stop(self, w: _Worker, grace: float) -> None:
        """SIGTERM: claim nothing more; the job in hand finishes within ``grace`` or is
        released for another worker."""
        w.stopping = True
        if w.state in ("idle", "starting"):
            self._gone(w)
        elif w.state == "busy":
            w.state = "draining"
            if w.ends_at > self.now + grace and w.lease is not None:
                w.ends_at = self.now + grace
                self.at(self.now + grace, self._interrupted, w.name, w.lease.job.id)

    def _notice(self, name: str) -> None:
        """A spot preemption: the node goes after its notice; the Deployment replaces the
        pod at once (a new node, ``start_s`` away)."""
        w = self.workers.get(name)
        if w is None or w.state == "gone" or w.stopping:
            return
        self.results.preempted += 1
        self._stop(w, min(self.sc.grace_s, self.sc.notice_s))
        self._add_worker(w.klass)

    # ---- planning housekeeping and the autoscaler -------------------------------------------

    async def _tick(self) -> None:
        """What the planning replica does every second: capacity, timers, expired leases."""
        p = self.planner
        live = sum(1 for w in self.workers.values() if w.state not in ("starting", "gone"))
        self._apply_now(p.set_workers(live, self.now))
        self._apply_now(p.tick(self.now))
        for q in self.queues.values():
            await q.reap()
        self.at(self.now + TICK_S, self._tick)

    async def _metric(self, klass: str) -> list[tuple[float, float]]:
        """The strategy's triggers: (value, target) each, as the ScaledObject declares them."""
        if self.strategy.kind == "demand":
            by_class = demand(
                self.planner,
                self.now,
                self.klass_of_effect.__getitem__,
                self.rule,
                self.classes,
                self.trend,
            )
            d = by_class[klass]
            return [(float(d.desired_workers), 1.0), (float(d.low_slack_jobs), LOW_SLACK_TARGET)]
        stats = await self.queues[klass].stats()
        jobs = stats.get("queued", 0) + stats.get("running", 0)
        return [(float(jobs), self.strategy.target)]

    async def _poll(self) -> None:
        for klass in self.classes:
            if self.strategy.kind == "fixed":
                want = self.strategy.fixed
            else:
                want = self.scalers[klass].poll(self.now, await self._metric(klass))
            self._scale(klass, want)
        self._sample()
        self.at(self.now + self.scalers[self.classes[0]].b.poll_s, self._poll)

    def _scale(self, klass: str, want: int) -> None:
        pods = [w for w in self.by_class[klass] if not w.stopping]
        for _ in range(want - len(pods)):
            self._add_worker(klass)
        if want < len(pods):
            # the ReplicaSet deletes pods not yet ready first, then the newest
            order = {"starting": 0, "idle": 1, "busy": 2, "draining": 3}
            victims = sorted(pods, key=lambda w: (order[w.state], -w.created))
            for w in victims[: len(pods) - want]:
                self._stop(w, self.sc.grace_s)
        self.results.peak_workers = max(
            self.results.peak_workers, sum(len(ws) for ws in self.by_class.values())
        )

    def _sample(self) -> None:
        if self.now - self._last_sample < 60:
            return
        self._last_sample = self.now
        live = [w for w in self.workers.values() if w.state != "gone"]
        self.results.series.append(
            {
                "t": self.now - EPOCH,
                "viewers": len(self.viewers),
                "expected": self.sc.concurrent(self.now - EPOCH),
                "workers": len(live),
                "ready": sum(1 for w in live if w.state not in ("starting",)),
                "stalled": sum(1 for v in self.viewers.values() if v.waiting is not None),
                "stall_s": self.results.stall_s,  # so far (from the end of the warm-up)
            }
        )

    def _count_from_now(self) -> None:
        """The warm-up is over: what happened so far is not counted."""
        for v in self.viewers.values():
            self._advance(v)  # into the warm-up's account
            if v.waiting is not None:
                k, _, why = v.waiting
                v.waiting = (k, self.now, why)
        series = self.results.series
        self.results = Results(self.strategy.label, viewers=len(self.viewers), series=series)
        self._counted_from = self.now
        for w in self.workers.values():
            w.busy_s = 0.0
            w.busy_from = self.now

    def _close(self) -> None:
        r = self.results
        for v in self.viewers.values():
            self._advance(v)
            self._stop_waiting(v)
        for w in self.workers.values():
            end = w.gone_at if w.gone_at is not None else self.now
            if end <= self._counted_from:
                continue
            r.worker_s += end - max(w.created, self._counted_from)
            r.ready_s += max(0.0, end - max(w.ready_at, self._counted_from))
            r.busy_s += w.busy_s
