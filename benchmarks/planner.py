"""Per-event scheduling cost of the event-driven planner, at 100, 1,000 and 10,000 sessions.

A world of N playing sessions (two per render on average, renders of 10 minutes in 1 s
segments, spread over the clip, each with a random stretch ahead of it already rendered, as in
a fleet that keeps up), on a simulated clock that moves so that every session plays in real
time. Then a stream of the events such a fleet sees — a playhead entering its next segment (most
of them), seeks, pauses and resumes, HTTP requests and their end, workers claiming and
finishing jobs, viewers leaving and arriving — each timed alone. For comparison, one full
replan of everything (what the old engine did every 250 ms and on every event).

    .venv/bin/python benchmarks/planner.py [--sessions 100 1000 10000] [--events 20000]

Run it twice when numbers matter: the machines are shared.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

from playhead.bench.stats import percentile
from playhead.queue import JobState
from playhead.scheduler import CostModel, DeadlinePolicy, RenderInfo, Session
from playhead.scheduler.ops import Ops
from playhead.scheduler.planner import Planner

FPS, S, SEGMENTS = 25.0, 25, 600


class World:
    def __init__(self, sessions: int, workers: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.planner = Planner(DeadlinePolicy(), CostModel(prior=0.02))
        self.clock = 1_000_000.0
        self.waiting: dict[str, float] = {}  # the queue: job → priority, and a heap over it
        self.heap: list[tuple[float, str]] = []  # (lazy deletion, like MemoryQueue's)
        self.running: list[str] = []
        self.sessions: dict[str, Session] = {}
        self.apply(self.planner.set_workers(workers, self.clock))
        self.tick = (
            0.25 / sessions
        )  # a quarter of the events: each viewer reaches a new segment once a second
        renders = max(1, sessions // 2)
        for r in range(renders):
            self.planner.add_render(RenderInfo(f"r{r}", FPS, S, SEGMENTS * S, "cost"))
        for i in range(sessions):
            render = f"r{self.rng.randrange(renders)}"
            at = self.rng.randrange(SEGMENTS * S)
            ahead = self.rng.randrange(3, 30)  # already rendered: a fleet that keeps up
            for k in range(at // S, min(SEGMENTS, at // S + ahead)):
                self.planner.changed(f"{render}:{k}", JobState.DONE, self.clock)
            self.report(Session(f"s{i}", render, at, True))

    def now_at(self, s: Session) -> int:
        """Where a playing session is now, played in real time since its report."""
        if not s.moving:
            return s.playhead
        moved = (self.clock - s.reported_at) * FPS * s.rate
        return min(int(s.playhead + moved), SEGMENTS * S - 1)

    def apply(self, ops: Ops) -> None:
        for job in ops.submit:
            self.waiting[job.job_id] = job.priority
            heapq.heappush(self.heap, (job.priority, job.job_id))
        for job_id, priority in ops.reprioritise:
            self.waiting[job_id] = priority
            heapq.heappush(self.heap, (priority, job_id))
        for job_id in ops.cancel:
            self.waiting.pop(job_id, None)

    def most_urgent(self) -> str:
        while True:
            priority, job = heapq.heappop(self.heap)
            if self.waiting.get(job) == priority:
                return job

    def report(self, s: Session) -> Ops:
        s = Session(s.id, s.render, s.playhead, s.playing, s.rate, self.clock)
        self.sessions[s.id] = s
        ops = self.planner.report(s, self.clock)
        self.apply(ops)
        return ops

    def event(self) -> tuple[str, float]:
        """One random event, timed alone (the planner only: no queue, no I/O)."""
        self.clock += self.tick
        rng = self.rng
        roll = rng.random()
        call: Callable[[], Ops]
        if roll < 0.25:
            kind = "next segment"
            s = rng.choice(list(self.sessions.values()))
            at = self.now_at(s)
            call = lambda: self.planner.report(  # noqa: E731
                Session(s.id, s.render, at, s.playing, s.rate, self.clock), self.clock
            )
            self.sessions[s.id] = Session(s.id, s.render, at, s.playing, s.rate, self.clock)
        elif roll < 0.27:
            kind = "seek"
            s = rng.choice(list(self.sessions.values()))
            at = rng.randrange(SEGMENTS * S)
            call = lambda: self.planner.report(  # noqa: E731
                Session(s.id, s.render, at, True, 1.0, self.clock), self.clock
            )
            self.sessions[s.id] = Session(s.id, s.render, at, True, 1.0, self.clock)
        elif roll < 0.28:
            kind = "pause/play"
            s = rng.choice(list(self.sessions.values()))
            flip = Session(s.id, s.render, self.now_at(s), not s.playing, s.rate, self.clock)
            call = lambda: self.planner.report(flip, self.clock)  # noqa: E731
            self.sessions[s.id] = flip
        elif roll < 0.30:
            kind = "request"
            render = f"r{rng.randrange(len(self.planner.renders))}"
            k = rng.randrange(SEGMENTS)
            owner = f"q{rng.randrange(1000)}"
            if rng.random() < 0.5:
                call = lambda: self.planner.request(render, k, owner, self.clock)  # noqa: E731
            else:
                kind = "request over"
                call = lambda: self.planner.unrequest(render, k, owner, self.clock)  # noqa: E731
        elif roll < 0.99:  # workers keep up (1.4x): claims and completions
            if self.running and (rng.random() < 0.5 or not self.waiting):
                kind = "job done"
                job = self.running.pop(rng.randrange(len(self.running)))
                result = {"frames": S, "seconds": 0.5, "effect": "cost"}
                call = lambda: self.planner.changed(  # noqa: E731
                    job, JobState.DONE, self.clock, result
                )
            elif self.waiting:
                kind = "job claimed"
                job = self.most_urgent()
                del self.waiting[job]
                self.running.append(job)
                call = lambda: self.planner.changed(job, JobState.RUNNING, self.clock)  # noqa: E731
            else:
                return self.event()
        else:
            kind = "viewer left/came"
            s = rng.choice(list(self.sessions.values()))
            call = lambda: self.planner.leave(s.id, self.clock)  # noqa: E731
            started = time.perf_counter()
            ops = call()
            elapsed = time.perf_counter() - started
            self.apply(ops)
            fresh = Session(s.id, s.render, rng.randrange(SEGMENTS * S), True, 1.0, self.clock)
            started = time.perf_counter()
            ops = self.planner.report(fresh, self.clock)
            elapsed += time.perf_counter() - started
            self.apply(ops)
            self.sessions[s.id] = fresh
            return kind, elapsed / 2
        started = time.perf_counter()
        ops = call()
        elapsed = time.perf_counter() - started
        self.apply(ops)
        return kind, elapsed

    def full_replan(self) -> float:
        """What the old engine did on every event and every 250 ms: plan everything."""
        p = self.planner
        renders = {rid: r.view for rid, r in p.renders.items()}
        started = time.perf_counter()
        p.policy.plan(self.clock, list(p.sessions.values()), renders, p.queued(), p.cost, p.workers)
        return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    return percentile(values, q) or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keeping-up", action="store_true", help="skip the overloaded fleets (slow at 10,000)"
    )
    args = parser.parse_args()
    print("| sessions | workers | events | p50 µs | p99 µs | max µs | full replan ms |")
    print("|--:|--:|--:|--:|--:|--:|--:|")
    by_kind: dict[tuple[int, str], list[float]] = defaultdict(list)
    for n in args.sessions:
        overloaded = [] if args.keeping_up else [max(1, n // 8)]  # fair shares at work
        for workers in (n, *overloaded):
            world = World(n, workers, args.seed)
            times = []
            for _ in range(args.events):
                kind, elapsed = world.event()
                times.append(elapsed)
                if workers == n:
                    by_kind[(n, kind)].append(elapsed)
            full = [world.full_replan() for _ in range(3 if n >= 10000 else 10)]
            print(
                f"| {n:,} | {workers:,} | {len(times):,} | {pct(times, 0.5) * 1e6:.0f} "
                f"| {pct(times, 0.99) * 1e6:.0f} | {max(times) * 1e6:.0f} "
                f"| {statistics.median(full) * 1e3:.1f} |"
            )
    print()
    print("| sessions | event | count | p50 µs | p99 µs |")
    print("|--:|---|--:|--:|--:|")
    for (n, kind), values in sorted(by_kind.items()):
        print(
            f"| {n:,} | {kind} | {len(values):,} | {pct(values, 0.5) * 1e6:.0f} "
            f"| {pct(values, 0.99) * 1e6:.0f} |"
        )


if __name__ == "__main__":
    main()
